"""Read queries over the device registry: one device, or all of them, as typed records.

The `devices` table holds one last-writer-wins row per (device, field) with a canonical JSON
value (see devices.py); a record is those rows folded together, defaults for missing fields.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

#: The fields device.registered writes; device.status_changed adds `status`, `status_reason`.
PROFILE_FIELDS = (
    "tier",
    "arch",
    "cores",
    "ram_mb",
    "gpu",
    "capabilities",
    "specialization",
    "location",
    "models",
)


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    name: str
    registered: bool = False  # a device.registered was applied (not only updates or a status)
    tier: str = "standard"
    arch: str = ""
    cores: int = 0
    ram_mb: int = 0
    gpu: str | None = None
    capabilities: tuple[str, ...] = ()
    specialization: str = ""
    location: str = ""
    models: tuple[str, ...] = ()
    status: str | None = None  # None until someone set one
    status_reason: str = ""
    lamport: int = 0  # the highest stamp among its fields
    extra: dict[str, Any] = field(default_factory=dict)  # fields this version does not know


_TUPLES = {"capabilities", "models"}
_KNOWN = {*PROFILE_FIELDS, "status", "status_reason"}


def _record(name: str, rows: list[tuple[str, str, int]]) -> DeviceRecord:
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    registered = False
    lamport = 0
    for key, raw, stamp in rows:
        lamport = max(lamport, stamp)
        value = json.loads(raw)
        if key == "name":
            registered = True
        elif key in _KNOWN:
            values[key] = tuple(value) if key in _TUPLES else value
        else:
            extra[key] = value
    return DeviceRecord(name=name, registered=registered, lamport=lamport, extra=extra, **values)


def device(conn: sqlite3.Connection, name: str) -> DeviceRecord | None:
    rows = conn.execute(
        "SELECT field, value, lamport FROM devices WHERE device = ?", (name,)
    ).fetchall()
    return _record(name, rows) if rows else None


def devices(conn: sqlite3.Connection) -> list[DeviceRecord]:
    """Every device with at least one field, by name."""
    grouped: dict[str, list[tuple[str, str, int]]] = {}
    for name, key, raw, stamp in conn.execute(
        "SELECT device, field, value, lamport FROM devices ORDER BY device, field"
    ):
        grouped.setdefault(name, []).append((key, raw, stamp))
    return [_record(name, rows) for name, rows in grouped.items()]
