"""Reading erasures: what was erased, by whom, and which nodes confirmed it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Erasure:
    memory: str
    content_hash: str
    interactions: tuple[str, ...]
    node: str  # who erased it
    ts: float | None
    confirmed: dict[str, int]  # node -> messages it deleted

    @property
    def entities(self) -> tuple[str, ...]:
        """Every entity whose events the erase removes: the memory and its interactions."""
        return (self.memory, *self.interactions)


_COLUMNS = "memory, content_hash, interactions, node, ts"


def _receipts(conn: sqlite3.Connection, memory: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT node, messages FROM erase_receipts WHERE memory = ? ORDER BY node", (memory,)
    )
    return {node: int(messages) for node, messages in rows}


def _erasure(conn: sqlite3.Connection, row: tuple[str, str, str, str, float | None]) -> Erasure:
    memory, content_hash, interactions, node, ts = row
    return Erasure(
        memory, content_hash, tuple(json.loads(interactions)), node, ts, _receipts(conn, memory)
    )


def erasure(conn: sqlite3.Connection, memory: str) -> Erasure | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM erasures WHERE memory = ?", (memory,)).fetchone()
    return None if row is None else _erasure(conn, row)


def erasures(conn: sqlite3.Connection) -> list[Erasure]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM erasures ORDER BY ts, memory").fetchall()
    return [_erasure(conn, row) for row in rows]
