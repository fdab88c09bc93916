"""Hybrid recall of memories: BM25 keywords and vectors fused by reciprocal rank fusion.

RRF (Cormack et al., 2009): a memory's score is the sum over the rankings it appears in of
`1 / (k + rank)`, rank counted from 1, k = 60. Each ranking contributes its best
`max(limit * 4, 40)` memories. Ties break by memory id, so the order is deterministic.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from . import memory_queries
from .memory_queries import Filters, MemoryHit
from .vectors import VectorSearch

RecallMode = Literal["hybrid", "keyword", "vector"]
RECALL_MODES: tuple[RecallMode, ...] = ("hybrid", "keyword", "vector")
RRF_K = 60


@dataclass(frozen=True, slots=True)
class RecallResult:
    """`hits` best first (score: the RRF score in hybrid mode, -bm25 in keyword mode, cosine
    similarity in vector mode); `note` says why the mode used differs from the one asked."""

    hits: list[MemoryHit]
    mode_used: RecallMode
    note: str | None = None


def fuse(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of rankings (ids best first): (id, score), best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _by_ids(conn: sqlite3.Connection, scored: Sequence[tuple[str, float]]) -> list[MemoryHit]:
    if not scored:
        return []
    rows = conn.execute(
        f"SELECT {memory_queries.HIT_COLUMNS}, 0.0 FROM memories m "
        "WHERE m.id IN (SELECT value FROM json_each(?))",
        (json.dumps([key for key, _ in scored]),),
    ).fetchall()
    found = {hit.id: hit for hit in memory_queries.hits(conn, rows)}
    return [dataclasses.replace(found[key], score=s) for key, s in scored if key in found]


def recall(
    conn: sqlite3.Connection,
    vectors: VectorSearch | None,
    query_text: str,
    *,
    query_vector: bytes | None,
    model: str | None,
    mode: RecallMode,
    limit: int,
    filters: Filters,
) -> RecallResult:
    def keywords(note: str | None) -> RecallResult:
        hits = memory_queries.search(conn, query_text, limit, filters, False)
        return RecallResult(hits, "keyword", note)

    if mode == "keyword":
        return keywords(None)
    if query_vector is None or not model:
        return keywords("keyword search only: no query vector")
    if vectors is None or not vectors.available():
        return keywords("keyword search only: vector search is not available here")
    if not vectors.has_vectors(model):
        return keywords(f"keyword search only: no vectors for model {model}")
    depth = max(limit * 4, 40)
    near = vectors.search(query_vector, model, limit=depth, filters=filters, kinds=("memory",))
    if mode == "vector":
        scored = [(hit.entity, hit.similarity) for hit in near[:limit]]
        return RecallResult(_by_ids(conn, scored), "vector")
    words = memory_queries.search(conn, query_text, depth, filters, False)
    fused = fuse([[hit.id for hit in words], [hit.entity for hit in near]])
    return RecallResult(_by_ids(conn, fused[:limit]), "hybrid")
