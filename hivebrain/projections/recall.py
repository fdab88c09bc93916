"""Hybrid recall over memories, knowledge chunks and observations.

Why and how: docs/design.md section 10, `hivebrain/projections/recall.py`.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from hivebrain.events.subjects import ROOT

from . import memory_queries
from .fts import match_query, pruned_match_query
from .knowledge import DOCUMENT_VISIBLE
from .memory_queries import Filters
from .vectors import KINDS, Kind, VectorSearch

RecallMode = Literal["hybrid", "keyword", "vector"]
RECALL_MODES: tuple[RecallMode, ...] = ("hybrid", "keyword", "vector")
RRF_K = 60

Key = TypeVar("Key", str, tuple[str, str])


@dataclass(frozen=True, slots=True)
class RecallHit:
    """One recalled memory, knowledge chunk or observation.

    `origin` says where it comes from, readably: a memory's id; a chunk's document source
    path and position; an observation's subject `hive.<node>.observation.<id>`. The fields
    after `origin` belong to one kind (None or empty for the others); `as_dict` keeps only
    the hit's own."""

    kind: Kind
    id: str  # memory id, chunk id ("<document id>:<index>") or observation id
    score: float
    text: str
    node: str  # author
    ts: float | None
    lamport: int
    origin: str
    # memory
    agent: str | None = None
    space: str | None = None
    tags: tuple[str, ...] = ()
    strength: float | None = None
    forgotten: bool | None = None
    # knowledge
    document: str | None = None
    source: str | None = None  # the document's path
    title: str | None = None
    chunk_index: int | None = None  # from 0
    total_chunks: int | None = None
    # observation
    subject: str | None = None
    observation_kind: str | None = None
    model: str | None = None
    readings: tuple[str, ...] = ()  # the sources of the readings it is about

    def as_dict(self) -> dict[str, Any]:
        common = ("kind", "id", "score", "text", "node", "ts", "lamport", "origin")
        own = _OWN_FIELDS[self.kind]
        return {name: _plain(getattr(self, name)) for name in (*common, *own)}


_OWN_FIELDS: dict[Kind, tuple[str, ...]] = {
    "memory": ("agent", "space", "tags", "strength", "forgotten"),
    "knowledge": ("document", "source", "title", "chunk_index", "total_chunks"),
    "observation": ("subject", "observation_kind", "model", "readings"),
}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, slots=True)
class RecallResult:
    """`hits` best first (score: the RRF score in hybrid mode, -bm25 in keyword mode, cosine
    similarity in vector mode); `note` says why the mode used differs from the one asked."""

    hits: list[RecallHit]
    mode_used: RecallMode
    note: str | None = None


def fuse(rankings: Sequence[Sequence[Key]], k: int = RRF_K) -> list[tuple[Key, float]]:
    """Reciprocal rank fusion of rankings (keys best first): (key, score), best first."""
    scores: dict[Key, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


# -- keyword rankings, one FTS query per kind ------------------------------------------------

_CHUNK_VISIBLE = (
    "NOT EXISTS (SELECT 1 FROM knowledge_documents d WHERE d.id = c.document "
    f"AND NOT ({DOCUMENT_VISIBLE}))"
)


@dataclass(frozen=True, slots=True)
class _Scope:
    """Where a kind's keyword matches live: its FTS5 index, its table (aliased), and the
    WHERE conditions the filters put on it."""

    fts: str
    table: str
    alias: str
    where: str
    args: list[Any]


def _scope(kind: Kind, filters: Filters) -> _Scope:
    if kind == "memory":
        where, args = filters.sql()
        # The index holds live memories only; `_kind_matches` reads the index and the rows in
        # two statements, between which a memory may be forgotten.
        return _Scope("memories_fts", "memories", "m", f"m.deleted = 0 AND {where}", args)
    if kind == "knowledge":
        cond, args = filters.common_sql("c")
        return _Scope(
            "knowledge_fts", "knowledge_chunks", "c", f"{_CHUNK_VISIBLE} AND {cond}", args
        )
    where, args = filters.common_sql("o")
    return _Scope("observations_fts", "observations", "o", where, args)


#: How many times `depth` rows are ranked by BM25 alone before the filters are applied.
_OVERFETCH = 8


def _keyword_sql(scope: _Scope) -> str:
    """SELECT id, -bm25 of the kind's live rows matching ?1, best first, LIMIT ?last."""
    fts, a = scope.fts, scope.alias
    return (
        f"SELECT {a}.id, -bm25({fts}) AS score FROM {fts} "
        f"JOIN {scope.table} {a} ON {a}.rowid = {fts}.rowid "
        f"WHERE {fts} MATCH ? AND {scope.where} ORDER BY score DESC, {a}.id LIMIT ?"
    )


def _kind_matches(
    conn: sqlite3.Connection, scope: _Scope, match: str, depth: int
) -> list[tuple[str, float]]:
    """(id, -bm25) of the best `depth` rows of one kind matching `match`, as `_keyword_sql`
    returns them, but with the row lookups and filters on the BM25-best rows only.

    FTS5 scores every matching row either way; joining each one to its table costs as much
    again (a row of a word found in 15,000 memories: 9 ms ranked alone, 17 ms joined). So
    the best `depth * _OVERFETCH` rows are ranked on the index alone, then filtered. That is
    the exact answer when the index had no more rows, or when `depth` rows pass the filters
    and the last of them scores above every row left out; otherwise (strict filters, ties at
    the cut) the joined query answers."""
    fts, a = scope.fts, scope.alias
    want = depth * _OVERFETCH
    top = conn.execute(
        f"SELECT rowid, -bm25({fts}) AS score FROM {fts} WHERE {fts} MATCH ? "
        "ORDER BY score DESC LIMIT ?",
        (match, want),
    ).fetchall()
    ids = dict(
        conn.execute(
            f"SELECT {a}.rowid, {a}.id FROM {scope.table} {a} WHERE {a}.rowid IN "
            f"(SELECT value FROM json_each(?)) AND {scope.where}",
            (json.dumps([rowid for rowid, _ in top]), *scope.args),
        ).fetchall()
    )
    ranked = sorted(
        ((str(ids[rowid]), float(score)) for rowid, score in top if rowid in ids),
        key=lambda hit: (-hit[1], hit[0]),
    )[:depth]
    if len(top) < want or (len(ranked) == depth and ranked[-1][1] > top[-1][1]):
        return ranked
    rows = conn.execute(_keyword_sql(scope), (match, *scope.args, depth)).fetchall()
    return [(str(key), float(score)) for key, score in rows]


def keyword_ranking(
    conn: sqlite3.Connection,
    query_text: str,
    kinds: Sequence[Kind],
    filters: Filters,
    depth: int,
    *,
    prune: bool = False,
) -> list[tuple[Kind, str, float]]:
    """(kind, id, -bm25) of the best `depth` keyword matches over `kinds`, best first.

    With `prune`, each kind's query leaves out the words common in that kind's index
    (`fts.pruned_match_query`): hybrid recall's keyword half, where such words cost most of
    the time and the vector half still weighs what they mean."""
    match = match_query(query_text)
    if match is None or depth < 1:
        return []
    found: list[tuple[Kind, str, float]] = []
    for kind in kinds:
        scope = _scope(kind, filters)
        query = pruned_match_query(conn, scope.fts, query_text) if prune else match
        rows = _kind_matches(conn, scope, query or match, depth)
        found.extend((kind, key, score) for key, score in rows)
    found.sort(key=lambda hit: (-hit[2], hit[0], hit[1]))
    return found[:depth]


# -- reading the hits returned ---------------------------------------------------------------


def _ids_json(keys: Iterable[str]) -> str:
    return json.dumps(list(keys))


def _memories(conn: sqlite3.Connection, ids: list[str]) -> dict[str, RecallHit]:
    rows = conn.execute(
        f"SELECT {memory_queries.HIT_COLUMNS}, 0.0 FROM memories m "
        "WHERE m.id IN (SELECT value FROM json_each(?))",
        (_ids_json(ids),),
    ).fetchall()
    return {
        h.id: RecallHit(
            kind="memory",
            id=h.id,
            score=0.0,
            text=h.text,
            node=h.node,
            ts=h.ts,
            lamport=h.lamport,
            origin=h.id,
            agent=h.agent,
            space=h.space,
            tags=h.tags,
            strength=h.strength,
            forgotten=h.forgotten,
        )
        for h in memory_queries.hits(conn, rows)
    }


def _chunks(conn: sqlite3.Connection, ids: list[str]) -> dict[str, RecallHit]:
    rows = conn.execute(
        "SELECT c.id, c.text, c.node, c.ts, c.lamport, c.document, c.source, c.chunk_index, "
        "c.total_chunks, d.title FROM knowledge_chunks c "
        "LEFT JOIN knowledge_documents d ON d.id = c.document "
        "WHERE c.id IN (SELECT value FROM json_each(?))",
        (_ids_json(ids),),
    ).fetchall()
    out = {}
    for key, text, node, ts, lamport, document, source, index, total, title in rows:
        out[key] = RecallHit(
            kind="knowledge",
            id=key,
            score=0.0,
            text=text,
            node=node,
            ts=ts,
            lamport=lamport,
            origin=f"{source} (chunk {index + 1}/{total})",
            document=document,
            source=source,
            title=title or None,
            chunk_index=index,
            total_chunks=total,
        )
    return out


def _observations(conn: sqlite3.Connection, ids: list[str]) -> dict[str, RecallHit]:
    rows = conn.execute(
        "SELECT o.id, o.text, o.node, o.ts, o.lamport, o.kind, o.model, "
        "(SELECT json_group_array(source) FROM (SELECT DISTINCT r.source FROM readings r "
        "WHERE r.id IN (SELECT value FROM json_each(o.readings)) ORDER BY r.source)) "
        "FROM observations o WHERE o.id IN (SELECT value FROM json_each(?))",
        (_ids_json(ids),),
    ).fetchall()
    out = {}
    for key, text, node, ts, lamport, kind, model, sources in rows:
        subject = f"{ROOT}.{node}.observation.{key}"
        out[key] = RecallHit(
            kind="observation",
            id=key,
            score=0.0,
            text=text,
            node=node,
            ts=ts,
            lamport=lamport,
            origin=subject,
            subject=subject,
            observation_kind=kind,
            model=model or None,
            readings=tuple(json.loads(sources or "[]")),
        )
    return out


_READERS = {"memory": _memories, "knowledge": _chunks, "observation": _observations}


def read_hits(
    conn: sqlite3.Connection, scored: Sequence[tuple[tuple[str, str], float]]
) -> list[RecallHit]:
    """The hits of `scored` ((kind, id), score), in its order, skipping any gone meanwhile."""
    by_kind: dict[str, list[str]] = {}
    for (kind, key), _ in scored:
        by_kind.setdefault(kind, []).append(key)
    found = {
        (kind, key): hit
        for kind, keys in by_kind.items()
        for key, hit in _READERS[kind](conn, keys).items()
    }
    out = []
    for ref, score in scored:
        hit = found.get(ref)
        if hit is not None:
            out.append(dataclasses.replace(hit, score=score))
    return out


# -- recall ----------------------------------------------------------------------------------


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
    kinds: Sequence[Kind] = KINDS,
) -> RecallResult:
    """The best `limit` hits of `kinds` for the query (see the module docstring)."""
    kinds = [k for k in KINDS if k in kinds and (k == "memory" or not filters.memory_only)]
    depth = max(limit * 4, 40)

    def keywords(note: str | None) -> RecallResult:
        ranked = keyword_ranking(conn, query_text, kinds, filters, limit)
        scored = [((kind, key), score) for kind, key, score in ranked]
        return RecallResult(read_hits(conn, scored), "keyword", note)

    if not kinds:
        return RecallResult([], mode, "nothing to search: space and tags only match memories")
    if mode == "keyword":
        return keywords(None)
    if query_vector is None or not model:
        return keywords("keyword search only: no query vector")
    if vectors is None or not vectors.available():
        return keywords("keyword search only: vector search is not available here")
    if not vectors.has_vectors(model):
        return keywords(f"keyword search only: no vectors for model {model}")
    near = vectors.search(query_vector, model, limit=depth, filters=filters, kinds=kinds)
    if mode == "vector":
        scored = [((hit.kind, hit.entity), hit.similarity) for hit in near[:limit]]
        return RecallResult(read_hits(conn, scored), "vector")
    words = keyword_ranking(conn, query_text, kinds, filters, depth, prune=True)
    fused = fuse(
        [[(kind, key) for kind, key, _ in words], [(hit.kind, hit.entity) for hit in near]]
    )
    return RecallResult(read_hits(conn, fused[:limit]), "hybrid")
