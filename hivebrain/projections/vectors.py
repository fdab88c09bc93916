"""Vector search over the `embeddings` table, one model at a time.

Vectors are float32 little-endian blobs (see `events/embedding.py`); distance is cosine
distance (1 - cosine similarity), lower is nearer.

Every search takes candidates from an in-memory index of the model's vectors, then ranks them
exactly on the stored blobs with sqlite-vec's `vec_distance_cosine`, applying the filters
(agent, space, tags, node, time, liveness) in the same SQL; when the filters leave too few, the
candidate count grows, and in the end the exact scan of every blob answers (also what
`exact=True` asks for).

Up to `threshold` vectors (default 20,000, at most 30 MB of 384-d floats) the index is flat: a
numpy matrix of unit rows, built from the table on first use and following
`embedding_changes`, whose candidates are exact (one matrix product). It replaced a scan of
the blobs in SQL, which reads every row through SQLite each query: over 10,000 clustered 384-d
vectors (`bench.hybrid` data, 2 shared cores under load) vector search went from ~35 ms to
~3-5 ms. A sqlite-vec `vec0` table was measured too (`spikes/vectors/exact.py`: 6.4 ms p50 at
10,000, 62.9 ms at 100,000) and left out: a second copy of every vector on disk, written at
every apply and rebuild, one table per dimension, and no filters inside its KNN.

Above `threshold` vectors (default 20,000) a model gets an hnswlib index (space `cosine`,
`M` = 16, `ef_construction` = 100, query `ef` = max(128, candidates)); its labels are the
`embeddings` rowids. Its `limit * 4` candidates are re-ranked exactly on the stored vectors,
with the filters, before the top `limit` are returned. Measured on 100,000 clustered 384-d
vectors (500 Gaussian clusters, as embeddings cluster; `spikes/vectors/params.py`): build
19.5 s on 2 cores, recall@10 of 40 re-ranked candidates 0.9925 at ef 64, 0.9995 at ef 128,
0.2 ms per query. Isotropic Gaussian noise, which has no neighbours to speak of, is the worst
case: 0.46 at ef 256 even with `M` = 32 and `ef_construction` = 200.

The hnswlib index is node-local derived state, like the FTS indexes: not in the digest,
persisted next to the database as `<db>.<model>.hnsw` with `<db>.<model>.hnsw.json` (model,
dim, element count, highest rowid, and its position in `embedding_changes`, the log of rows
written to `embeddings`). It is loaded on open when consistent with the database, rebuilt
when missing or inconsistent, and follows the log incrementally (new rows and vectors replaced
in place); the file is rewritten after every 1,000 additions, and what it lacks is read from
the log on the next open.
`ProjectionStore.reset` deletes the files.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import hnswlib
import numpy as np

from hivebrain.errors import ProjectionError

from .knowledge import DOCUMENT_VISIBLE
from .memory_queries import Filters
from .sqlite import load_vec

Kind = Literal["memory", "knowledge", "observation"]
KINDS: tuple[Kind, ...] = ("memory", "knowledge", "observation")

DEFAULT_THRESHOLD = 20_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
HNSW_EF_SEARCH = 128
OVERSAMPLE = 4  # ANN candidates per result, re-ranked exactly
SAVE_EVERY = 1000  # incremental additions between two saves of the index file


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


def _file_name(model: str) -> str:
    """The model's name, safe in a file name (with a hash of it when characters changed)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model)
    if safe == model:
        return safe
    return f"{safe}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def index_paths(db: Path, model: str) -> tuple[Path, Path]:
    base = db.with_name(f"{db.name}.{_file_name(model)}.hnsw")
    return base, base.with_name(base.name + ".json")


def remove_index_files(db: Path) -> None:
    """Delete every model's persisted index of database `db`."""
    for path in db.parent.glob(f"{glob.escape(db.name)}.*.hnsw*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _changed(
    conn: sqlite3.Connection, model: str, dim: int, after: int, head: int
) -> list[tuple[int, bytes]]:
    """(rowid, vector) of the model's rows written between log positions `after` and `head`."""
    return conn.execute(
        "SELECT e.rowid, e.vector FROM embedding_changes l JOIN embeddings e "
        "ON e.rowid = l.row WHERE l.seq > ? AND l.seq <= ? AND l.model = ? AND e.dim = ? "
        "GROUP BY e.rowid",
        (after, head, model, dim),
    ).fetchall()


def _first_dim(conn: sqlite3.Connection, model: str) -> int:
    row = conn.execute(
        "SELECT dim FROM embeddings WHERE model = ? ORDER BY rowid LIMIT 1", (model,)
    ).fetchone()
    return int(row[0]) if row else 0


class FlatIndex:
    """Every vector of one model in a numpy matrix (unit rows), in step with
    `embedding_changes`: exact candidates by one matrix product, for models at or below the
    threshold (20,000 x 384 floats: 30 MB). Node-local and in memory only; built on first use
    from the table (a few tens of milliseconds)."""

    def __init__(self, conn: sqlite3.Connection, model: str) -> None:
        self.conn, self.model = conn, model
        self.dim = _first_dim(conn, model)
        self.rows = np.empty((0, max(self.dim, 1)), dtype=np.float32)
        self.rowids = np.empty(0, dtype=np.int64)
        self._where: dict[int, int] = {}  # rowid -> row of the matrix
        self.count = 0
        self.position = 0

    def sync(self, head: int) -> None:
        if head == self.position:
            return
        changed = _changed(self.conn, self.model, self.dim, self.position, head)
        if changed:
            vectors = np.frombuffer(b"".join(v for _, v in changed), dtype="<f4")
            vectors = _unit(vectors.reshape(-1, self.dim))
            for i, (rowid, _) in enumerate(changed):
                at = self._where.get(rowid)
                if at is None:  # a new row: append, growing the matrix by doubling
                    at = self.count
                    if at == len(self.rows):
                        self._grow(max(1024, 2 * at))
                    self._where[rowid] = at
                    self.rowids[at] = rowid
                    self.count += 1
                self.rows[at] = vectors[i]
        self.position = head

    def _grow(self, capacity: int) -> None:
        rows = np.empty((capacity, self.rows.shape[1]), dtype=np.float32)
        rows[: self.count] = self.rows[: self.count]
        rowids = np.empty(capacity, dtype=np.int64)
        rowids[: self.count] = self.rowids[: self.count]
        self.rows, self.rowids = rows, rowids

    def candidates(self, query: np.ndarray, n: int) -> list[int]:
        n = min(n, self.count)
        if n < 1:
            return []
        scores = self.rows[: self.count] @ _unit(query.astype(np.float32)).reshape(-1)
        top = np.argpartition(-scores, n - 1)[:n] if n < self.count else np.arange(self.count)
        return [int(r) for r in self.rowids[: self.count][top]]


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    out: np.ndarray = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return out


class AnnIndex:
    """The hnswlib index of one model's vectors, kept in step with `embedding_changes`."""

    def __init__(self, conn: sqlite3.Connection, db: Path | None, model: str) -> None:
        self.conn, self.db, self.model = conn, db, model
        self.index: Any = None
        self.dim = 0
        self.count = 0
        self.max_rowid = 0
        self.position = 0
        self.unsaved = 0
        self.builds = 0  # how many times it was built from the table (not loaded)

    # -- keeping in step --------------------------------------------------------------------

    def sync(self, head: int) -> None:
        """Bring the index up to log position `head`: load, build, or add what is new."""
        if self.index is None and not self._load(head):
            self._build(head)
            return
        if head == self.position:
            return
        rows = _changed(self.conn, self.model, self.dim, self.position, head)
        fresh = [(r, v) for r, v in rows if r > self.max_rowid]
        self._add(rows)
        self.count += len(fresh)
        self.max_rowid = max([self.max_rowid, *(r for r, _ in fresh)])
        self.position = head
        self.unsaved += len(rows)
        if self.unsaved >= SAVE_EVERY:
            self.save()

    def _add(self, rows: Sequence[tuple[int, bytes]]) -> None:
        if not rows:
            return
        needed = self.index.get_current_count() + len(rows)
        if needed > self.index.get_max_elements():
            self.index.resize_index(max(needed, self.index.get_max_elements() * 2))
        labels = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
        data = np.frombuffer(b"".join(v for _, v in rows), dtype="<f4").reshape(-1, self.dim)
        self.index.add_items(data, labels)

    def _stats(self) -> tuple[int, int, int]:
        """(dim, count, max rowid) of the model's vectors in the table (the first row's dim)."""
        first = self.conn.execute(
            "SELECT dim FROM embeddings WHERE model = ? ORDER BY rowid LIMIT 1", (self.model,)
        ).fetchone()
        if first is None:
            return 0, 0, 0
        count, high = self.conn.execute(
            "SELECT count(*), max(rowid) FROM embeddings WHERE model = ? AND dim = ?",
            (self.model, first[0]),
        ).fetchone()
        return int(first[0]), int(count), int(high or 0)

    def _build(self, head: int) -> None:
        self.dim, count, _ = self._stats()
        self.index = hnswlib.Index(space="cosine", dim=max(self.dim, 1))
        self.index.init_index(
            max_elements=max(count, 1024), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M
        )
        self.count = self.max_rowid = 0
        cursor = self.conn.execute(
            "SELECT rowid, vector FROM embeddings WHERE model = ? AND dim = ? ORDER BY rowid",
            (self.model, self.dim),
        )
        while batch := cursor.fetchmany(10_000):
            self._add(batch)
            self.count += len(batch)
            self.max_rowid = batch[-1][0]
        self.position = head
        self.builds += 1
        self.save()

    def _load(self, head: int) -> bool:
        """Load the persisted index if it matches the table; False when it must be rebuilt."""
        if self.db is None:
            return False
        path, meta_path = index_paths(self.db, self.model)
        try:
            meta = json.loads(meta_path.read_text())
            dim, count, high, position = (
                int(meta["dim"]),
                int(meta["count"]),
                int(meta["max_rowid"]),
                int(meta["position"]),
            )
            if meta["model"] != self.model or position > head or dim < 1:
                return False
            table_dim, table_count, table_high = self._stats()
            if table_dim != dim or table_count < count or table_high < high:
                return False
            covered = self.conn.execute(
                "SELECT count(*) FROM embeddings WHERE model = ? AND dim = ? AND rowid <= ?",
                (self.model, dim, high),
            ).fetchone()[0]
            if covered != count:
                return False
            index = hnswlib.Index(space="cosine", dim=dim)
            index.load_index(str(path), max_elements=max(count, 1024))
            if index.get_current_count() != count:
                return False
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            return False
        self.index, self.dim, self.count, self.max_rowid = index, dim, count, high
        self.position = position
        return True

    def save(self) -> None:
        """Write the index then its JSON, each atomically (a reader seeing a new index with an
        old JSON finds the counts differ and rebuilds)."""
        self.unsaved = 0
        if self.db is None or self.index is None:
            return
        path, meta_path = index_paths(self.db, self.model)
        meta = {
            "model": self.model,
            "dim": self.dim,
            "count": self.count,
            "max_rowid": self.max_rowid,
            "position": self.position,
            "space": "cosine",
            "M": HNSW_M,
            "ef_construction": HNSW_EF_CONSTRUCTION,
        }
        try:
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            self.index.save_index(str(tmp))
            os.replace(tmp, path)
            tmp_meta = meta_path.with_name(meta_path.name + f".{os.getpid()}.tmp")
            tmp_meta.write_text(json.dumps(meta, sort_keys=True))
            os.replace(tmp_meta, meta_path)
        except OSError:
            pass  # a read-only place: the index lives in memory only, rebuilt next time

    # -- querying ---------------------------------------------------------------------------

    def candidates(self, query: np.ndarray, n: int) -> list[int]:
        n = min(n, self.index.get_current_count())
        if n < 1:
            return []
        self.index.set_ef(max(HNSW_EF_SEARCH, n))
        labels, _ = self.index.knn_query(query, k=n)
        return [int(label) for label in labels[0]]


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
