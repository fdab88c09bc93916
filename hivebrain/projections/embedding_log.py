"""The `embedding_changes` log as the vector indexes read it: the rows written to `embeddings`
between two log positions, and a model's dimension. Why: docs/projections.md.
"""

from __future__ import annotations

import sqlite3


def changed_rows(
    conn: sqlite3.Connection, model: str, dim: int, after: int, head: int
) -> list[tuple[int, bytes]]:
    """(rowid, vector) of the model's rows written between log positions `after` and `head`."""
    return conn.execute(
        "SELECT e.rowid, e.vector FROM embedding_changes l JOIN embeddings e "
        "ON e.rowid = l.row WHERE l.seq > ? AND l.seq <= ? AND l.model = ? AND e.dim = ? "
        "GROUP BY e.rowid",
        (after, head, model, dim),
    ).fetchall()


def first_dim(conn: sqlite3.Connection, model: str) -> int:
    row = conn.execute(
        "SELECT dim FROM embeddings WHERE model = ? ORDER BY rowid LIMIT 1", (model,)
    ).fetchone()
    return int(row[0]) if row else 0
