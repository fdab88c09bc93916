"""What a projection is: a name, the event types it handles and one apply function per type.

An apply function receives every new event of its type from one batch at once (so it can use
`executemany`); the store has already dropped duplicates by `event_id`. Because every rule is
order-independent (last-writer-wins by stamp, add-wins sets, sums), the order in which the
types of a batch are applied does not matter.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hivebrain.events import Event, Payload

Apply = Callable[[sqlite3.Connection, Sequence[Event]], None]


@dataclass(frozen=True, slots=True)
class Projection:
    """`finish`, if set, runs once at the end of every batch that applied one of its types."""

    name: str
    handlers: Mapping[type[Payload], Apply]
    finish: Callable[[sqlite3.Connection], None] | None = None

    @property
    def types(self) -> frozenset[str]:
        return frozenset(cls.TYPE for cls in self.handlers)


STAMP = ("lamport", "node", "event_id")


def stamp_columns(prefix: str) -> tuple[str, str, str]:
    return (f"{prefix}_lamport", f"{prefix}_node", f"{prefix}_event")


def lww_upsert(
    table: str,
    keys: Sequence[str],
    fields: Sequence[str],
    stamp: Sequence[str] = STAMP,
) -> str:
    """An INSERT that, on an existing key, overwrites `fields` and the stamp only when the new
    stamp is higher: last-writer-wins in any arrival order."""
    columns = [*keys, *fields, *stamp]
    marks = ", ".join("?" for _ in columns)
    sets = ", ".join(f"{c} = excluded.{c}" for c in (*fields, *stamp))
    new = ", ".join(f"excluded.{c}" for c in stamp)
    old = ", ".join(stamp)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets} WHERE ({new}) > ({old})"
    )


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text on every node."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
