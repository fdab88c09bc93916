"""The node-local table `actor_stats`: the runtime writes its actors' figures there about once a
second, so `hivebrain stats` in another process can show them.

Node state, like stream positions: not replicated, not part of the projection digest, untouched
by a projection rebuild.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from hivebrain.projections.sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS actor_stats (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    processed INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    restarts INTEGER NOT NULL,
    bad INTEGER NOT NULL,
    lag INTEGER,
    last_error TEXT,
    updated REAL NOT NULL
)
"""
COLUMNS = ("name", "state", "processed", "failures", "restarts", "bad", "lag", "last_error")


@dataclass(frozen=True, slots=True)
class ActorStats:
    """One actor's figures. `lag`: messages of its consumer not yet acknowledged (None until
    first read). `bad`: messages that could not be decoded (acknowledged and skipped)."""

    name: str
    state: str  # starting, running, backing_off, stopped, failed
    processed: int = 0
    failures: int = 0
    restarts: int = 0
    bad: int = 0
    lag: int | None = None
    last_error: str | None = None


class StatsTable:
    """Writes the rows of one runtime (the only one of its node) to `actor_stats`."""

    def __init__(self, path: Path | str) -> None:
        self._conn = connect(path)
        self._conn.execute(SCHEMA)

    def replace(self, rows: Iterable[ActorStats], now: float) -> None:
        """The table becomes exactly `rows` (actors no longer configured disappear)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM actor_stats")
            conn.executemany(
                f"INSERT INTO actor_stats ({', '.join(COLUMNS)}, updated) "
                f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
                [(*astuple(r), now) for r in rows],
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


def read_stats(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The rows of `actor_stats` as plain dicts ([] when no runtime ever wrote there)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'actor_stats'"
    ).fetchone()
    if exists is None:
        return []
    cursor = conn.execute(f"SELECT {', '.join(COLUMNS)}, updated FROM actor_stats ORDER BY name")
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]
