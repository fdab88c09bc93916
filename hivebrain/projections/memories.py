"""Apply rules of the memory family.

Why and how: docs/design.md section 10, `hivebrain/projections/memories.py`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import cast

from hivebrain.events import Event
from hivebrain.events.memory import (
    MemoryDecayed,
    MemoryEdited,
    MemoryForgotten,
    MemoryMoved,
    MemoryReinforced,
    MemoryRestored,
    MemoryStored,
)

from .projection import Apply, Projection, lww_upsert, stamp_columns
from .schema import GONE, LIVE

_STORED_FIELDS = ("agent", "session", "user_message", "response", "source", "confidence")
_STORED_FIELDS_ALL = (*_STORED_FIELDS, "shared", "ts")
_STORED_STAMP = stamp_columns("stored")
_TEXT_STAMP = stamp_columns("text")
_SPACE_STAMP = stamp_columns("space")


def _wins(stamp: tuple[str, str, str]) -> str:
    new = ", ".join(f"excluded.{c}" for c in stamp)
    return f"({new}) > ({', '.join(stamp)})"


def _take(columns: Sequence[str], stamp: tuple[str, str, str]) -> list[str]:
    wins = _wins(stamp)
    return [f"{c} = iif({wins}, excluded.{c}, {c})" for c in (*columns, *stamp)]


_STORE_COLUMNS = (
    "id",
    *_STORED_FIELDS_ALL,
    *_STORED_STAMP,
    "text",
    *_TEXT_STAMP,
    "space",
    *_SPACE_STAMP,
)
_STORE_SQL = (
    f"INSERT INTO memories ({', '.join(_STORE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _STORE_COLUMNS)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(
        [
            *_take(_STORED_FIELDS_ALL, _STORED_STAMP),
            *_take(("text",), _TEXT_STAMP),
            *_take(("space",), _SPACE_STAMP),
        ]
    )
)
_INSERT_NEW_SQL = (
    f"INSERT OR IGNORE INTO memories ({', '.join(_STORE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _STORE_COLUMNS)})"
)
_MID = "(SELECT mid FROM memories WHERE id = ?)"
_VERSION_SQL = (
    "INSERT INTO memory_versions (event_id, mid, base_lamport, base_node, "
    f"base_event, lamport, node, text) VALUES (?, {_MID}, ?, ?, ?, ?, ?, ?)"
)
_VERSION_AT_SQL = (
    "INSERT INTO memory_versions (event_id, mid, lamport, node, text) VALUES (?, ?, ?, ?, ?)"
)
_TAG_AT_SQL = "INSERT OR IGNORE INTO memory_tags (mid, tag, event_id) VALUES (?, ?, ?)"
_TAG_SQL = f"INSERT OR IGNORE INTO memory_tags (mid, tag, event_id) VALUES ({_MID}, ?, ?)"
_UNTAG_SQL = f"INSERT OR IGNORE INTO memory_untags (mid, tag, observed) VALUES ({_MID}, ?, ?)"
_TEXT_SQL = lww_upsert("memories", ["id"], ["text"], _TEXT_STAMP)
_SPACE_SQL = lww_upsert("memories", ["id"], ["space"], _SPACE_STAMP)
_DELETED_SQL = lww_upsert("memories", ["id"], ["deleted"], stamp_columns("deleted"))
_PLACEHOLDER_SQL = "INSERT OR IGNORE INTO memories (id) VALUES (?)"
_STRENGTH_SQL = (
    "INSERT INTO memories (id, strength) VALUES (?, ?) "
    "ON CONFLICT (id) DO UPDATE SET strength = strength + excluded.strength"
)


def milli(amount: float) -> int:
    return round(amount * 1000)


def apply_stored(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows: list[tuple[object, ...]] = []
    texts: list[str] = []
    for e in events:
        p = cast(MemoryStored, e.payload)
        text = p.content()
        stamp = (e.lamport, e.node, e.event_id)
        texts.append(text)
        rows.append(
            (
                e.entity,
                p.agent,
                p.session,
                p.user_message,
                p.response,
                p.source,
                p.confidence,
                int(p.shared),
                e.ts,
                *stamp,
                text,
                *stamp,
                p.space,
                *stamp,
            )
        )
    mids = _insert_new(conn, rows)
    if mids is not None:
        conn.executemany(
            _VERSION_AT_SQL,
            [
                (e.event_id, mid, e.lamport, e.node, text)
                for e, mid, text in zip(events, mids, texts, strict=True)
            ],
        )
        tags = [
            (mid, tag, e.event_id)
            for e, mid in zip(events, mids, strict=True)
            for tag in cast(MemoryStored, e.payload).tags
        ]
        if tags:
            conn.executemany(_TAG_AT_SQL, tags)
        return
    # Some memory already had a row (an event about it arrived first, or it is stored twice):
    # the upsert applies every row by the merge rules (a no-op for the rows just inserted).
    conn.executemany(_STORE_SQL, rows)
    conn.executemany(
        _VERSION_SQL,
        [
            (e.event_id, e.entity, None, None, None, e.lamport, e.node, t)
            for e, t in zip(events, texts, strict=True)
        ],
    )
    tags_by_id = [
        (e.entity, tag, e.event_id) for e in events for tag in cast(MemoryStored, e.payload).tags
    ]
    if tags_by_id:
        conn.executemany(_TAG_SQL, tags_by_id)


def _insert_new(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> range | None:
    """Insert the rows of memories that have no row yet. When all of them were new (the usual
    case: a memory.stored comes before anything else about its memory) and got consecutive
    rowids after the highest one, in order, return those, so the child rows can name their
    `mid` directly instead of looking it up by id. Otherwise None."""
    (high,) = conn.execute("SELECT coalesce(max(mid), 0) FROM memories").fetchone()
    conn.executemany(_INSERT_NEW_SQL, rows)
    count, top = conn.execute(
        "SELECT count(*), max(mid) FROM memories WHERE mid > ?", (high,)
    ).fetchone()
    # SQLite gives a new row the highest rowid + 1 (random ones only once that reaches 2^63-1,
    # which the second check would catch).
    if count == len(rows) and top == high + len(rows):
        return range(high + 1, high + 1 + len(rows))
    return None


def apply_edited(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    texts: list[tuple[object, ...]] = []
    versions: list[tuple[object, ...]] = []
    tags: list[tuple[str, str, str]] = []
    untags: list[tuple[str, str, str]] = []
    for e in events:
        p = cast(MemoryEdited, e.payload)
        if p.text is not None:
            texts.append((e.entity, p.text, e.lamport, e.node, e.event_id))
            b = p.base
            versions.append(
                (e.event_id, e.entity, b.lamport, b.node, b.event_id, e.lamport, e.node, p.text)
            )
        tags.extend((e.entity, tag, e.event_id) for tag in p.tag)
        untags.extend((e.entity, r.tag, add) for r in p.untag for add in r.observed)
    conn.executemany(_PLACEHOLDER_SQL, [(e.entity,) for e in events])
    conn.executemany(_TEXT_SQL, texts)
    conn.executemany(_VERSION_SQL, versions)
    conn.executemany(_TAG_SQL, tags)
    conn.executemany(_UNTAG_SQL, untags)


def apply_moved(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    conn.executemany(
        _SPACE_SQL,
        [
            (e.entity, cast(MemoryMoved, e.payload).space, e.lamport, e.node, e.event_id)
            for e in events
        ],
    )


def _deleted(value: int) -> Apply:
    def apply(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
        conn.executemany(
            _DELETED_SQL, [(e.entity, value, e.lamport, e.node, e.event_id) for e in events]
        )

    return apply


def apply_reinforced(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    conn.executemany(
        _STRENGTH_SQL,
        [(e.entity, milli(cast(MemoryReinforced, e.payload).amount)) for e in events],
    )


def apply_decayed(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    conn.executemany(
        _STRENGTH_SQL,
        [(e.entity, -milli(cast(MemoryDecayed, e.payload).amount)) for e in events],
    )


_INDEX_NEW = [
    f"INSERT INTO {fts} (rowid, text) SELECT mid, text FROM memories "
    "WHERE mid > (SELECT high FROM fts_progress WHERE name = 'memories') "
    f"AND {cond.format(r='memories')} ORDER BY mid"  # deleted = 1 rows: partial index
    for fts, cond in (("memories_fts", LIVE), ("memories_forgotten_fts", GONE))
]


def index_new(conn: sqlite3.Connection) -> None:
    """Index the memories inserted since the last call (one INSERT ... SELECT per index)."""
    for statement in _INDEX_NEW:
        conn.execute(statement)
    conn.execute(
        "UPDATE fts_progress SET high = (SELECT coalesce(max(mid), 0) FROM memories) "
        "WHERE name = 'memories'"
    )


MEMORIES = Projection(
    name="memories",
    handlers={
        MemoryStored: apply_stored,
        MemoryEdited: apply_edited,
        MemoryMoved: apply_moved,
        MemoryForgotten: _deleted(1),
        MemoryRestored: _deleted(0),
        MemoryReinforced: apply_reinforced,
        MemoryDecayed: apply_decayed,
    },
    finish=index_new,
)
