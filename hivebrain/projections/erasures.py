"""Apply rules of erasure: `memory.erased` and the nodes' `memory.erase_confirmed` receipts.

An erased memory's rows go (the memory, its versions, tags, vectors, and the interactions the
erase names) with SQLite's secure_delete on, so the freed bytes are zeroed. The memory's id
and those interactions' ids are kept in `erased_entities`: any event about them that arrives
later (a late copy from a node that was cut off) is dropped before it is applied, in any order
(`ERASABLE_FAMILIES`, checked by the batch applier). The earliest erase (by stamp) is the one
recorded; receipts are one per (memory, node), the earliest kept. Deleting the messages from
the streams is the node's work (`hivebrain/node/eraser.py`). Tables: `schema.ERASURE_DDL`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import cast

from hivebrain.events import Event
from hivebrain.events.memory import MemoryEraseConfirmed, MemoryErased

from .projection import Projection

#: Families whose events about an erased entity are dropped (an erase and its receipts stay).
ERASABLE_FAMILIES = frozenset({"memory", "embedding", "interaction"})
KEPT_TYPES = frozenset({MemoryErased.TYPE, MemoryEraseConfirmed.TYPE})

_EARLIER = "(excluded.lamport, excluded.node, excluded.event_id) < (lamport, node, event_id)"
_ERASURE_SQL = (
    "INSERT INTO erasures (memory, content_hash, interactions, lamport, node, event_id, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (memory) DO UPDATE SET "
    + ", ".join(
        f"{c} = iif({_EARLIER}, excluded.{c}, {c})"
        for c in ("content_hash", "interactions", "ts", "node", "event_id", "lamport")
    )
)
_RECEIPT_SQL = (
    "INSERT INTO erase_receipts (memory, node, messages, lamport, event_id, ts) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (memory, node) DO UPDATE SET "
    + ", ".join(
        f"{c} = iif({_EARLIER}, excluded.{c}, {c})"
        for c in ("messages", "ts", "event_id", "lamport")
    )
)


def split_erased(
    conn: sqlite3.Connection, events: Sequence[Event]
) -> tuple[list[Event], dict[str, str]]:
    """The events to apply, and entity -> memory for those dropped: events about an entity
    erased before or by an erase among `events` (the erase and receipts themselves are kept)."""
    erasing: dict[str, str] = {}
    for e in events:
        if isinstance(e.payload, MemoryErased):
            erasing[e.entity] = e.entity
            erasing.update((i, e.entity) for i in e.payload.interactions)
    candidates = [
        e.entity for e in events if e.family in ERASABLE_FAMILIES and e.type not in KEPT_TYPES
    ]
    if not candidates:
        return list(events), {}
    if conn.execute("SELECT 1 FROM erased_entities LIMIT 1").fetchone() is not None:
        rows = conn.execute(
            "SELECT entity, memory FROM erased_entities "
            "WHERE entity IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(set(candidates))),),
        )
        erasing.update(dict(rows.fetchall()))
    if not erasing:
        return list(events), {}
    keep, dropped = [], {}
    for e in events:
        if e.entity in erasing and e.type not in KEPT_TYPES and e.family in ERASABLE_FAMILIES:
            dropped[e.entity] = erasing[e.entity]
        else:
            keep.append(e)
    return keep, dropped


def apply_erased(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows, entities = [], []
    for e in events:
        p = cast(MemoryErased, e.payload)
        rows.append(
            (
                e.entity,
                p.content_hash,
                json.dumps(list(p.interactions)),
                e.lamport,
                e.node,
                e.event_id,
                e.ts,
            )
        )
        entities.append((e.entity, e.entity))
        entities.extend((i, e.entity) for i in p.interactions)
    conn.executemany(_ERASURE_SQL, rows)
    conn.executemany(
        "INSERT OR IGNORE INTO erased_entities (entity, memory) VALUES (?, ?)", entities
    )
    erase_rows(conn, [entity for entity, _ in entities])


def erase_rows(conn: sqlite3.Connection, entities: Sequence[str]) -> None:
    """Delete every row of these entities (memories and their children, vectors,
    interactions), zeroing the freed bytes."""
    keys = json.dumps(list(entities))
    conn.execute("PRAGMA secure_delete = ON")
    try:
        mids = "SELECT mid FROM memories WHERE id IN (SELECT value FROM json_each(?))"
        for child in ("memory_versions", "memory_tags", "memory_untags"):
            conn.execute(f"DELETE FROM {child} WHERE mid IN ({mids})", (keys,))
        conn.execute("DELETE FROM memories WHERE id IN (SELECT value FROM json_each(?))", (keys,))
        # A new memory may now get the highest deleted `mid` again (SQLite reuses the largest
        # rowid + 1): the keyword index must not take it for one indexed already.
        conn.execute(
            "UPDATE fts_progress SET high = min(high, "
            "(SELECT coalesce(max(mid), 0) FROM memories)) WHERE name = 'memories'"
        )
        conn.execute(
            "DELETE FROM embeddings WHERE entity IN (SELECT value FROM json_each(?))", (keys,)
        )
        conn.execute(
            "DELETE FROM interactions WHERE entity IN (SELECT value FROM json_each(?))", (keys,)
        )
    finally:
        conn.execute("PRAGMA secure_delete = OFF")


def apply_confirmed(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    conn.executemany(
        _RECEIPT_SQL,
        [
            (
                e.entity,
                e.node,
                cast(MemoryEraseConfirmed, e.payload).messages,
                e.lamport,
                e.event_id,
                e.ts,
            )
            for e in events
        ],
    )


ERASURES = Projection(
    "erasures", {MemoryErased: apply_erased, MemoryEraseConfirmed: apply_confirmed}
)
