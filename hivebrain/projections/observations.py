"""Apply rules of the observation family: one row per aggregate and per observation id
(last-writer-wins if an id is ever written twice); observation text is keyword-indexed."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import cast

from hivebrain.events import Event
from hivebrain.events.observation import ObservationWritten, ReadingsAggregated

from .projection import Projection, canonical_json, lww_upsert

_READING_FIELDS = ("source", "window_start", "window_end", "count", "min", "max", "mean")
_READING_SQL = lww_upsert("readings", ["id"], [*_READING_FIELDS, "unit", "ts"])
_OBSERVATION_SQL = lww_upsert(
    "observations", ["id"], ["text", "kind", "readings", "model", "confidence", "ts"]
)


def apply_aggregated(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(ReadingsAggregated, e.payload)
        rows.append(
            (
                e.entity,
                p.source,
                p.window_start,
                p.window_end,
                p.count,
                p.min,
                p.max,
                p.mean,
                p.unit,
                e.ts,
                e.lamport,
                e.node,
                e.event_id,
            )
        )
    conn.executemany(_READING_SQL, rows)


def apply_written(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(ObservationWritten, e.payload)
        rows.append(
            (
                e.entity,
                p.text,
                p.kind,
                canonical_json(p.readings),
                p.model,
                p.confidence,
                e.ts,
                e.lamport,
                e.node,
                e.event_id,
            )
        )
    conn.executemany(_OBSERVATION_SQL, rows)


OBSERVATIONS = Projection(
    name="observations",
    handlers={ReadingsAggregated: apply_aggregated, ObservationWritten: apply_written},
)
