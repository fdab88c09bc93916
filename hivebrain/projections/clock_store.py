"""The Lamport clock's persistent store (`hivebrain.events.ClockStore`) in the projection file.

The `clock` table is node state: a rebuild of the projections never touches it. Several
processes of one node may share it; each reservation is one `BEGIN IMMEDIATE` transaction, so
no two stores on the same file ever hand out overlapping ranges.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hivebrain.errors import ProjectionError

from .schema import migrate
from .sqlite import connect, sqlite_errors

OBSERVE_SQL = (
    "INSERT INTO clock (id, high) VALUES (1, ?) "
    "ON CONFLICT (id) DO UPDATE SET high = max(high, excluded.high)"
)


def read_high(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT high FROM clock WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def clock_after_jump(conn: sqlite3.Connection, gap: int) -> int | None:
    """Where the applied stamps, walked up from 0, first rise by more than `gap` (or the clock
    stands more than `gap` above all of them): the highest stamp below that rise. None when
    there is none, the usual case."""
    (first,) = conn.execute(
        "SELECT min(lamport) FROM (SELECT lamport, "
        "lamport - lag(lamport, 1, 0) OVER (ORDER BY lamport) AS rise FROM applied) "
        "WHERE rise > ?",
        (gap,),
    ).fetchone()
    if first is None:
        (top,) = conn.execute("SELECT coalesce(max(lamport), 0) FROM applied").fetchone()
        return int(top) if read_high(conn) > top + gap else None
    (below,) = conn.execute(
        "SELECT coalesce(max(lamport), 0) FROM applied WHERE lamport < ?", (first,)
    ).fetchone()
    return int(below)


def lower_clock(conn: sqlite3.Connection, value: int) -> None:
    """Set the stored high-water mark to `value`, even below what it is (mending only)."""
    try:
        conn.execute("UPDATE clock SET high = ? WHERE id = 1", (value,))
    except sqlite_errors() as exc:
        raise ProjectionError(f"cannot store clock value: {exc}") from None


class SqliteClockStore:
    def __init__(self, path: Path | str) -> None:
        self._conn = connect(path)
        try:
            migrate(self._conn)
        except sqlite_errors() as exc:
            self._conn.close()
            raise ProjectionError(f"cannot prepare clock in {path}: {exc}") from None

    def reserve(self, above: int, count: int) -> int:
        """Reserve `count` values above max(stored, above); return the first of them."""
        if count < 1:
            raise ValueError("count must be >= 1")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                high = max(read_high(self._conn), above) + count
                self._conn.execute(OBSERVE_SQL, (high,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite_errors() as exc:
            raise ProjectionError(f"cannot reserve clock values: {exc}") from None
        return high - count + 1

    def observe(self, value: int) -> None:
        """Raise the stored high-water mark to at least `value`."""
        try:
            self._conn.execute(OBSERVE_SQL, (value,))
        except sqlite_errors() as exc:
            raise ProjectionError(f"cannot store clock value: {exc}") from None

    @property
    def high(self) -> int:
        return read_high(self._conn)

    def close(self) -> None:
        self._conn.close()
