"""The one registry of event types and of the upcasters that lift older schema versions.

Family modules register their payload classes with `@event_type`; a change of shape bumps the
class's `VERSION` and registers an `@upcaster(TYPE, from_version)` that turns a payload dict of
the old version into one of the next. Decoding applies upcasters in sequence, then validates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hivebrain.errors import InvalidEvent, UnknownEventType

from .envelope import Payload

P = TypeVar("P", bound=type[Payload])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_TYPES: dict[str, type[Payload]] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def event_type(cls: P) -> P:
    """Class decorator: register a payload class under its `TYPE`."""
    name = cls.TYPE
    family, _, verb = name.partition(".")
    if not family or not verb or "." in verb:
        raise ValueError(f"{cls.__name__}.TYPE must look like 'family.verb', got {name!r}")
    if name in _TYPES and _TYPES[name] is not cls:
        raise ValueError(f"event type {name!r} registered twice")
    _TYPES[name] = cls
    return cls


def upcaster(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Decorator: register a function lifting `type_name` payloads from `from_version` by one."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(type_name, from_version)] = fn
        return fn

    return register


def payload_class(type_name: str) -> type[Payload]:
    try:
        return _TYPES[type_name]
    except KeyError:
        raise UnknownEventType(f"unknown event type {type_name!r}") from None


def all_types() -> dict[str, type[Payload]]:
    """Every registered event type, by name (a copy)."""
    return dict(sorted(_TYPES.items()))


def upcast(type_name: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """Lift a payload dict of `version` to the registered current version of its type."""
    cls = payload_class(type_name)
    if version > cls.VERSION:
        raise InvalidEvent(
            f"{type_name} v{version} is newer than this node understands (v{cls.VERSION})"
        )
    while version < cls.VERSION:
        step = _UPCASTERS.get((type_name, version))
        if step is None:
            raise InvalidEvent(f"no upcaster for {type_name} from v{version}")
        payload = step(payload)
        version += 1
    return payload
