"""The one way to open the projection's SQLite file.

The standard `sqlite3` module is used where it can load extensions (sqlite-vec needs that);
where it cannot, the packaged SQLite of `pysqlite3-binary` is used instead. Every connection
gets the same settings: WAL, `synchronous=NORMAL`, no foreign keys, a 5 s busy timeout, usable
from any thread, and autocommit mode (`isolation_level=None`) so that every transaction is an
explicit `BEGIN` ... `COMMIT`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import aiosqlite

from hivebrain.errors import ProjectionError

BUSY_TIMEOUT_MS = 5000
CACHE_KIB = -65536  # 64 MiB page cache: random-key B-trees stay in memory


def sqlite_module() -> ModuleType:
    """The DB-API module in use: stdlib `sqlite3`, or `pysqlite3.dbapi2` where it cannot load
    extensions."""
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        import pysqlite3.dbapi2 as packaged
    except ImportError:  # no packaged SQLite: the stdlib one still works, without extensions
        return sqlite3
    return cast(ModuleType, packaged)


def sqlite_errors() -> tuple[type[Exception], ...]:
    """The driver exception classes to catch (the two modules do not share a base class)."""
    module = sqlite_module()
    if module is sqlite3:
        return (sqlite3.Error,)
    return (sqlite3.Error, cast(type[Exception], module.Error))


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) the SQLite file at `path` with the projection's settings."""
    module = sqlite_module()
    target = str(path)
    errors: tuple[type[Exception], ...] = (OSError, *sqlite_errors())
    try:
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        conn: Any = module.connect(
            target,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute(f"PRAGMA cache_size = {CACHE_KIB}")
        conn.execute("PRAGMA temp_store = MEMORY")
    except errors as exc:
        raise ProjectionError(f"cannot open projection database {target}: {exc}") from None
    return cast(sqlite3.Connection, conn)


def load_vec(conn: sqlite3.Connection) -> None:
    """Load the sqlite-vec extension (`vec_distance_cosine`, ...) into `conn`."""
    import sqlite_vec

    errors: tuple[type[Exception], ...] = (AttributeError, *sqlite_errors())
    try:
        conn.enable_load_extension(True)
        try:
            sqlite_vec.load(conn)
        finally:
            conn.enable_load_extension(False)
    except errors as exc:
        raise ProjectionError(f"cannot load sqlite-vec: {exc}") from None


def connect_async(path: Path | str) -> aiosqlite.Connection:
    """An aiosqlite connection (for async read paths) built on `connect`; await it to open."""
    return aiosqlite.Connection(lambda: connect(path), iter_chunk_size=64)
