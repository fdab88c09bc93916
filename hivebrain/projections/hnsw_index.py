"""The hnswlib vector index (`AnnIndex`) of one model, persisted next to the database as
`<db>.<model>.hnsw` (+ `.json`), loaded when consistent, rebuilt otherwise, and kept in step
with `embedding_changes`. Used above the vector threshold. Why: docs/projections.md.
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
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from .embedding_log import changed_rows

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
HNSW_EF_SEARCH = 128
SAVE_EVERY = 1000  # incremental additions between two saves of the index file


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
        rows = changed_rows(self.conn, self.model, self.dim, self.position, head)
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
