"""The event envelope and the base class of every event type.

An event is immutable. Its envelope says who wrote it (`node`), when in causal order
(`lamport`), which entity it changes (`entity`) and what happened (`payload`, a typed model
whose class is the event type). The total order `(lamport, node, event_id)` -- a `Stamp` --
decides every tie between events.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from hivebrain.errors import InvalidEvent

#: Node names and entity ids become NATS subject tokens: no dots, spaces or wildcards.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_:-]{1,128}$")
NODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Far below the signed 64-bit limit of msgpack and SQLite: a node that observes the largest
# accepted stamp can still reserve blocks above it for a very long time.
MAX_LAMPORT = 2**53


class Stamp(NamedTuple):
    """A point in the hive's total order; compares as a tuple."""

    lamport: int
    node: str
    event_id: str


class Payload(BaseModel):
    """Base of every event type: a frozen model that rejects unknown fields.

    Subclasses set `TYPE` ("family.verb") and `VERSION`; older versions are upcast on decode
    (see `registry.upcaster`), so handlers only ever see the current shape.
    """

    # bytes (e.g. vectors) travel as msgpack bin; in JSON (CLI, logs) they are base64.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        ser_json_bytes="base64",
        val_json_bytes="base64",
    )

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1


class VersionRef(BaseModel):
    """The stamp of an earlier event, carried inside a payload (e.g. the version an edit edits)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lamport: int = Field(ge=0, le=MAX_LAMPORT)
    node: str
    event_id: str

    @classmethod
    def of(cls, stamp: Stamp) -> VersionRef:
        return cls(lamport=stamp.lamport, node=stamp.node, event_id=stamp.event_id)

    def stamp(self) -> Stamp:
        return Stamp(self.lamport, self.node, self.event_id)


class _Entropy:
    """os.urandom read 4 KiB at a time (one system call per ~400 ids instead of one each),
    handed out under a lock; a forked child starts with none, so it never repeats its
    parent's bytes."""

    SIZE = 4000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._at + n > len(self._pool):
                self._pool = os.urandom(self.SIZE)
                self._at = 0
            self._at += n
            return self._pool[self._at - n : self._at]

    def forget(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0


_ENTROPY = _Entropy()
os.register_at_fork(after_in_child=_ENTROPY.forget)


def new_id() -> str:
    """A fresh globally unique id: 32 hex characters, time-ordered like UUIDv7 (48 bits of
    milliseconds, then 80 random bits). Ids made later sort later, so the projection's
    indexes on ids grow at their end instead of being written all over."""
    return f"{time.time_ns() // 1_000_000:012x}{_ENTROPY.take(10).hex()}"


def derived_id(millis: int, *parts: str) -> str:
    """An id derived from `parts`, in the shape of `new_id`: 48 bits of `millis` (when the
    thing it names happened), then 80 bits of sha256 over the parts. The same parts always
    give the same id, so a write that is repeated (an import run twice) names the same
    entity or event, and JetStream (`Nats-Msg-Id`) and the projection (`event_id`) drop the
    repeat. Parts are joined unambiguously (length-prefixed)."""
    digest = hashlib.sha256()
    for part in parts:
        raw = part.encode()
        digest.update(b"%d:" % len(raw) + raw)
    return f"{max(0, min(millis, 2**48 - 1)):012x}{digest.hexdigest()[:20]}"


@dataclass(frozen=True, slots=True)
class Event:
    """One immutable, Lamport-stamped change. Build local ones with `Event.new`."""

    event_id: str
    node: str
    lamport: int
    entity: str
    payload: Payload
    ts: float = field(default=0.0, compare=False)

    @property
    def type(self) -> str:
        return self.payload.TYPE

    @property
    def v(self) -> int:
        return self.payload.VERSION

    @property
    def family(self) -> str:
        return self.payload.TYPE.split(".", 1)[0]

    @property
    def stamp(self) -> Stamp:
        return Stamp(self.lamport, self.node, self.event_id)

    @classmethod
    def new(
        cls,
        payload: Payload,
        *,
        node: str,
        lamport: int,
        entity: str | None = None,
        event_id: str | None = None,
        ts: float | None = None,
    ) -> Event:
        """A new event; checks that node and entity can be used as subject tokens."""
        event = cls(
            event_id=event_id or new_id(),
            node=node,
            lamport=lamport,
            entity=entity or new_id(),
            payload=payload,
            ts=time.time() if ts is None else ts,
        )
        event.check()
        return event

    def check(self) -> None:
        """Raise InvalidEvent unless the envelope's fields are well formed."""
        if not NODE_RE.fullmatch(self.node):
            raise InvalidEvent(
                f"node name {self.node!r} must be lowercase letters, digits, '-' or '_'"
            )
        if not TOKEN_RE.fullmatch(self.entity):
            raise InvalidEvent(
                f"entity {self.entity!r} must be 1-128 letters, digits, '_', ':' or '-'"
            )
        if not TOKEN_RE.fullmatch(self.event_id):
            raise InvalidEvent(f"event_id {self.event_id!r} is not a valid id")
        if isinstance(self.lamport, bool):
            raise InvalidEvent("lamport must be an integer, got a bool")
        if self.lamport > MAX_LAMPORT:
            raise InvalidEvent(f"lamport must be <= 2**53, got {self.lamport}")
        if self.lamport < 1:
            raise InvalidEvent(f"lamport must be >= 1, got {self.lamport}")
        if not self.payload.TYPE:
            raise InvalidEvent(f"{type(self.payload).__name__} is not a registered event type")

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view of the whole event, for humans and scripts."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "v": self.v,
            "node": self.node,
            "lamport": self.lamport,
            "ts": self.ts,
            "entity": self.entity,
            "payload": self.payload.model_dump(mode="json"),
        }
