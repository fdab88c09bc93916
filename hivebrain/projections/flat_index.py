"""The flat vector index (`FlatIndex`): one model's vectors as unit rows of an in-memory numpy
matrix, following `embedding_changes`; its candidates are exact (one matrix product). Used at
or below the vector threshold. Why: docs/projections.md.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from .embedding_log import changed_rows, first_dim


class FlatIndex:
    """Every vector of one model in a numpy matrix (unit rows), in step with
    `embedding_changes`: exact candidates by one matrix product, for models at or below the
    threshold (20,000 x 384 floats: 30 MB). Node-local and in memory only; built on first use
    from the table (a few tens of milliseconds)."""

    def __init__(self, conn: sqlite3.Connection, model: str) -> None:
        self.conn, self.model = conn, model
        self.dim = first_dim(conn, model)
        self.rows = np.empty((0, max(self.dim, 1)), dtype=np.float32)
        self.rowids = np.empty(0, dtype=np.int64)
        self._where: dict[int, int] = {}  # rowid -> row of the matrix
        self.count = 0
        self.position = 0

    def sync(self, head: int) -> None:
        if head == self.position:
            return
        changed = changed_rows(self.conn, self.model, self.dim, self.position, head)
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
