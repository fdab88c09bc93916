"""Apply rules of the device family (entity = node name).

Each field of a device is its own last-writer-wins register, one row per (device, field) with
a canonical JSON value: device.registered writes every field, device.updated the fields that
are not None, device.status_changed the `status` field.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, cast

from hivebrain.events import Event
from hivebrain.events.device import DeviceRegistered, DeviceStatusChanged, DeviceUpdated

from .projection import Projection, canonical_json, lww_upsert

_FIELD_SQL = lww_upsert("devices", ["device", "field"], ["value"])

#: Hardware tiers, weakest first (the device-priority conflict strategy ranks by this).
TIERS = ("micro", "edge", "standard", "gpu", "server")


def _rows(e: Event, fields: Iterable[tuple[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (e.entity, name, canonical_json(value), e.lamport, e.node, e.event_id)
        for name, value in fields
    ]


def apply_registered(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(DeviceRegistered, e.payload)
        rows.extend(_rows(e, p.model_dump(mode="json").items()))
    conn.executemany(_FIELD_SQL, rows)


def apply_updated(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(DeviceUpdated, e.payload)
        rows.extend(_rows(e, p.model_dump(mode="json", exclude_none=True).items()))
    conn.executemany(_FIELD_SQL, rows)


def apply_status(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(DeviceStatusChanged, e.payload)
        rows.extend(_rows(e, [("status", p.status), ("status_reason", p.reason)]))
    conn.executemany(_FIELD_SQL, rows)


DEVICES = Projection(
    name="devices",
    handlers={
        DeviceRegistered: apply_registered,
        DeviceUpdated: apply_updated,
        DeviceStatusChanged: apply_status,
    },
)
