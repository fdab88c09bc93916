"""The canonical digest of the replicated projection state.

sha256 over every replicated table's rows in primary-key order, each value written with a type
tag. Node-local or arrival-order dependent things are left out: stream positions, dead letters,
the clock, rowids and the FTS indexes (which are derived from the tables that are included).
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from .schema import DIGEST_QUERIES, LOCAL_COLUMNS


def _value(value: Any) -> bytes:
    if value is None:
        return b"n;"
    if isinstance(value, bool | int):
        return b"i%d;" % int(value)
    if isinstance(value, float):
        return b"f" + value.hex().encode() + b";"
    if isinstance(value, str):
        raw = value.encode()
        return b"s%d:" % len(raw) + raw
    if isinstance(value, bytes | memoryview):
        raw = bytes(value)
        return b"b%d:" % len(raw) + raw
    raise TypeError(f"cannot digest a {type(value).__name__}")


def digest(conn: sqlite3.Connection) -> str:
    """sha256 hex of the projection state; equal on every node that applied the same events."""
    h = hashlib.sha256()
    for table, query in DIGEST_QUERIES:
        h.update(b"T" + table.encode() + b"\n")
        cursor = conn.execute(query)
        names = [c[0] for c in cursor.description]
        keep = [i for i, n in enumerate(names) if n not in LOCAL_COLUMNS.get(table, ())]
        h.update(",".join(names[i] for i in keep).encode() + b"\n")
        for row in cursor:
            h.update(b"".join(_value(row[i]) for i in keep) + b"\n")
    return h.hexdigest()
