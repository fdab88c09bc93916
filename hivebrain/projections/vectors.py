"""Vector search over the `embeddings` table, one model at a time: candidates from the model's
index (`flat_index.py` or `hnsw_index.py`), ranked exactly in SQL with sqlite-vec's cosine
distance and the filters, falling back to the exact scan. Why: docs/projections.md.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hivebrain.errors import ProjectionError

from .flat_index import FlatIndex
from .hnsw_index import AnnIndex, remove_index_files
from .knowledge import DOCUMENT_VISIBLE
from .memory_queries import Filters
from .sqlite import load_vec

Kind = Literal["memory", "knowledge", "observation"]
KINDS: tuple[Kind, ...] = ("memory", "knowledge", "observation")

DEFAULT_THRESHOLD = 20_000
OVERSAMPLE = 4  # ANN candidates per result, re-ranked exactly


@dataclass(frozen=True, slots=True)
class VectorHit:
    entity: str
    kind: Kind
    distance: float  # cosine distance: lower is nearer

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


#: Per kind: the join from `embeddings e` to the entity's live row (alias, join, condition).
_JOINS: dict[Kind, tuple[str, str, str]] = {
    "memory": (
        "m",
        "JOIN memories m ON m.id = e.entity",
        "m.deleted = 0 AND m.text IS NOT NULL",
    ),
    "knowledge": (
        "c",
        "JOIN knowledge_chunks c ON c.id = e.entity",
        "NOT EXISTS (SELECT 1 FROM knowledge_documents d WHERE d.id = c.document "
        f"AND NOT ({DOCUMENT_VISIBLE}))",
    ),
    "observation": ("o", "JOIN observations o ON o.id = e.entity", "1"),
}


def _ranked_sql(kinds: Sequence[Kind], filters: Filters, rows: str) -> tuple[str, list[Any]]:
    """SELECT entity, kind, distance of the model's live entities, nearest first; `rows` is an
    extra condition on `e` (all rows, or candidate rowids). Parameters: query vector, model,
    dim, then the returned ones, then the limit."""
    selects, args = [], []
    for kind in kinds:
        alias, join, live = _JOINS[kind]
        where = f"e.model = ?2 AND e.dim = ?3 AND {rows} AND {live}"
        cond, extra = filters.sql() if kind == "memory" else filters.common_sql(alias)
        where += f" AND {cond}"
        args.extend(extra)
        selects.append(
            f"SELECT e.entity, '{kind}', vec_distance_cosine(e.vector, ?1) AS d "
            f"FROM embeddings e {join} WHERE {where}"
        )
    # Positional ?N for the shared values; the filter values follow in order.
    sql = " UNION ALL ".join(selects) + " ORDER BY d, 1 LIMIT ?"
    return sql, args


def _number_args(sql: str, first: int) -> str:
    """Turn the plain `?` of `sql` into `?first`, `?first+1`, ... (mixing ?N and ? is legal
    but numbers the plain ones after the highest ?N; explicit is clearer)."""
    counter = iter(range(first, first + sql.count("?")))
    return re.sub(r"\?(?!\d)", lambda _: f"?{next(counter)}", sql)


class VectorSearch:
    """Exact and ANN search of one database's vectors (one hnswlib index per model)."""

    def __init__(
        self, conn: sqlite3.Connection, db: Path | None, *, threshold: int = DEFAULT_THRESHOLD
    ) -> None:
        self.conn, self.db, self.threshold = conn, db, threshold
        self._loaded = False
        self._indexes: dict[str, AnnIndex | FlatIndex] = {}

    def _ready(self) -> None:
        if not self._loaded:
            load_vec(self.conn)
            self._loaded = True

    def available(self) -> bool:
        """Whether sqlite-vec loads into this connection."""
        try:
            self._ready()
        except ProjectionError:
            return False
        return True

    def has_vectors(self, model: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM embeddings WHERE model = ? LIMIT 1", (model,))
        return row.fetchone() is not None

    def index(self, model: str) -> AnnIndex | FlatIndex:
        """The model's index, in step with the table: a flat numpy matrix at or below the
        threshold, hnswlib above it."""
        found = self.conn.execute("SELECT max(seq) FROM embedding_changes").fetchone()
        head = int(found[0] or 0)
        index = self._indexes.get(model)
        if index is None or (isinstance(index, FlatIndex) and index.position != head):
            count = self.conn.execute(
                "SELECT count(*) FROM embeddings WHERE model = ?", (model,)
            ).fetchone()[0]
            if count > self.threshold and not isinstance(index, AnnIndex):
                index = AnnIndex(self.conn, self.db, model)
            elif index is None:
                index = FlatIndex(self.conn, model)
            self._indexes[model] = index
        index.sync(head)
        return index

    def search(
        self,
        query_vector: bytes,
        model: str,
        *,
        limit: int = 10,
        filters: Filters | None = None,
        kinds: Sequence[Kind] = KINDS,
        exact: bool = False,
    ) -> list[VectorHit]:
        """The `limit` live entities of `kinds` nearest to `query_vector`. The node and time
        filters apply to every kind; with space, tags or session set only memories match."""
        if limit < 1 or not kinds:
            return []
        if len(query_vector) % 4 or not query_vector:
            raise ProjectionError("a query vector is float32 bytes")
        self._ready()
        filters = filters or Filters()
        if filters.memory_only:
            kinds = [k for k in kinds if k == "memory"]
            if not kinds:
                return []
        dim = len(query_vector) // 4
        ann = None if exact else self.index(model)
        if ann is not None and ann.dim == dim and ann.count:
            query = np.frombuffer(query_vector, dtype="<f4").reshape(1, dim)
            n = limit * OVERSAMPLE
            while True:
                rowids = ann.candidates(query, n)
                hits = self._rank(query_vector, model, kinds, filters, limit, rowids)
                if len(hits) >= limit or len(rowids) >= ann.count:
                    return hits
                if n >= 64 * limit * OVERSAMPLE:
                    break  # the filters are selective: the scan is the better plan
                n *= 4
        return self._rank(query_vector, model, kinds, filters, limit, None)

    def _rank(
        self,
        query_vector: bytes,
        model: str,
        kinds: Sequence[Kind],
        filters: Filters,
        limit: int,
        rowids: list[int] | None,
    ) -> list[VectorHit]:
        rows = "1" if rowids is None else "e.rowid IN (SELECT value FROM json_each(?4))"
        sql, args = _ranked_sql(kinds, filters, rows)
        first = 4 if rowids is None else 5
        sql = _number_args(sql, first)
        params: list[Any] = [query_vector, model, len(query_vector) // 4]
        if rowids is not None:
            params.append(json.dumps(rowids))
        result = self.conn.execute(sql, (*params, *args, limit)).fetchall()
        return [VectorHit(entity, kind, float(d)) for entity, kind, d in result]

    def save(self) -> None:
        for ann in self._indexes.values():
            if isinstance(ann, AnnIndex) and ann.unsaved:
                ann.save()

    def invalidate(self) -> None:
        """Forget every index, in memory and on disk (after the tables were reset)."""
        self._indexes.clear()
        if self.db is not None:
            remove_index_files(self.db)
