"""The one codec: events to msgpack bytes and back.

Only this module knows msgpack. Decoding checks the envelope, upcasts older payload versions
(see `registry.upcast`) and validates the payload against its type; anything wrong becomes an
`InvalidEvent` or `UnknownEventType` whose message is the dead-letter reason.
"""

from __future__ import annotations

from typing import Any

import msgpack
from pydantic import ValidationError

from hivebrain.errors import InvalidEvent

from .envelope import Event
from .registry import payload_class, upcast

CONTENT_TYPE = "application/msgpack"

_ENVELOPE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "event_id": str,
    "type": str,
    "v": int,
    "node": str,
    "lamport": int,
    "ts": (int, float),
    "entity": str,
    "payload": dict,
}
_ENVELOPE_KEYS = frozenset(_ENVELOPE_FIELDS)


def to_wire(event: Event) -> dict[str, Any]:
    """The plain dict that is msgpack-encoded on the wire."""
    return {
        "event_id": event.event_id,
        "type": event.type,
        "v": event.v,
        "node": event.node,
        "lamport": event.lamport,
        "ts": event.ts,
        "entity": event.entity,
        "payload": event.payload.model_dump(mode="python"),
    }


def encode(event: Event) -> bytes:
    try:
        data: bytes = msgpack.packb(to_wire(event), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidEvent(f"{event.type}: cannot encode: {exc}") from None
    return data


def _well_formed(wire: dict[str, Any]) -> bool:
    """The fast check of the envelope (`type(x) is int` also excludes bool)."""
    return (
        wire.keys() == _ENVELOPE_KEYS
        and type(wire["event_id"]) is str
        and type(wire["type"]) is str
        and type(wire["v"]) is int
        and type(wire["node"]) is str
        and type(wire["lamport"]) is int
        and type(wire["ts"]) in (float, int)
        and type(wire["entity"]) is str
        and type(wire["payload"]) is dict
    )


def _explain(wire: dict[str, Any]) -> InvalidEvent:
    """Why an envelope failed the fast check, as the error to raise."""
    for name, kind in _ENVELOPE_FIELDS.items():
        value = wire.get(name)
        if value is None:
            return InvalidEvent(f"envelope field {name!r} is missing")
        if not isinstance(value, kind) or isinstance(value, bool):
            return InvalidEvent(f"envelope field {name!r} has the wrong type")
    extra = ", ".join(sorted(map(str, set(wire) - _ENVELOPE_KEYS)))
    return InvalidEvent(f"unknown envelope fields: {extra}")


def from_wire(wire: Any) -> Event:
    """Validate a decoded wire dict into an Event (upcasting older payload versions)."""
    if not isinstance(wire, dict):
        raise InvalidEvent(f"event must be a map, got {type(wire).__name__}")
    if not _well_formed(wire):
        raise _explain(wire)
    cls = payload_class(wire["type"])
    fields = upcast(wire["type"], wire["v"], wire["payload"])
    try:
        payload = cls.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise InvalidEvent(f"{wire['type']}: {where}: {first['msg']}") from None
    event = Event(
        event_id=wire["event_id"],
        node=wire["node"],
        lamport=wire["lamport"],
        entity=wire["entity"],
        payload=payload,
        ts=float(wire["ts"]),
    )
    event.check()
    return event


def decode(data: bytes) -> Event:
    try:
        wire = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated exception types
        raise InvalidEvent(f"not msgpack: {type(exc).__name__}: {exc}") from None
    return from_wire(wire)
