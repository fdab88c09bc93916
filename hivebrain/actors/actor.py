"""The actor: a name, the event types it consumes, lifecycle hooks and a batch handler.

An actor is small. It reaches the world only through the ports of its `Context` (publish an
event, this node's name, a clock, read-only projection access), all Protocols, so its logic is
tested with plain fakes; the runtime (`runtime.py`) feeds it from a durable JetStream consumer.

Lifecycle of one incarnation: `on_start(ctx)`, then `handle(batch)` any number of times, then
`on_stop()`. When `on_start` or `handle` raises, the runtime calls `on_failure(exc)`, then
`on_stop()` (so every `on_start` is paired with one `on_stop`), waits (exponential back-off)
and starts a new incarnation with `on_start` again. Delivery is at least once: a batch that
failed is delivered again, so `handle` must be idempotent (events carry unique ids).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, Self

import structlog

from hivebrain.embedding.config import EmbedderConfig
from hivebrain.errors import ConfigError
from hivebrain.events import Event, Payload
from hivebrain.projections.device_queries import DeviceRecord
from hivebrain.projections.store import MemoryRow
from hivebrain.transport.event_writer import Publish

log = structlog.get_logger(__name__)

#: Actor names become part of JetStream consumer names: no dots, spaces or wildcards.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


class Clock(Protocol):
    """Wall-clock time, in seconds since the epoch (for windows, schedules, display)."""

    def now(self) -> float: ...


class ProjectionReader(Protocol):
    """Read-only access to this node's projection (e.g. `ProjectionStore`)."""

    def memory(self, entity: str) -> MemoryRow | None: ...

    def device(self, name: str) -> DeviceRecord | None: ...

    def devices(self) -> list[DeviceRecord]: ...

    @property
    def connection(self) -> sqlite3.Connection: ...


class SystemClock:
    def now(self) -> float:
        return time.time()


def always_online() -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Context:
    """The ports an actor may use, given to `on_start`. `online()`: whether this node reaches
    the hub now (always True on the hub itself)."""

    publish: Publish
    node: str
    clock: Clock
    store: ProjectionReader
    online: Callable[[], bool] = always_online


@dataclass(frozen=True, slots=True)
class ActorSetup:
    """What an actor named in nodes.toml is built from: the node's data directory and its
    configured services."""

    data_dir: Path
    embedder: EmbedderConfig | None = None


class Actor:
    """Base of every actor. Subclasses set `name` and `consumes` and implement `handle`.

    `batch_size`: at most this many events per `handle` call. `concurrency`: at most this many
    batches in flight at once (each on its own pull of the same durable consumer).
    """

    name: ClassVar[str] = ""
    consumes: ClassVar[tuple[type[Payload], ...]] = ()
    batch_size: int = 100
    concurrency: int = 1

    ctx: Context

    @classmethod
    def build(cls, setup: ActorSetup) -> Self:
        """The actor as configured for a node (the default takes no configuration)."""
        return cls()

    def shared_key(self) -> str | None:
        """None: the actor has a durable consumer of its own on this node's HIVE. A key: the
        actors of every node returning the same key share one durable consumer on the hub's
        HIVE (JetStream hands each event to one of them), so they split the work."""
        return None

    async def on_start(self, ctx: Context) -> None:
        """Called before the first batch of each incarnation; the default keeps `ctx`."""
        self.ctx = ctx

    async def on_stop(self) -> None:
        """Called once per incarnation: after the last batch, or after `on_failure`."""

    async def handle(self, events: list[Event]) -> None:
        """Process a batch of events of the `consumes` types, in stream order."""
        raise NotImplementedError

    def on_failure(self, exc: BaseException) -> None:
        """Called when `on_start` or `handle` raised; the default logs it."""
        log.error("actor.failed", actor=self.name, error=f"{type(exc).__name__}: {exc}")

    @classmethod
    def types(cls) -> frozenset[str]:
        """The event type names this actor consumes."""
        return frozenset(p.TYPE for p in cls.consumes)

    @classmethod
    def families(cls) -> tuple[str, ...]:
        """The event families of `consumes`, sorted, without repeats."""
        return tuple(sorted({p.TYPE.split(".", 1)[0] for p in cls.consumes}))

    def check(self) -> None:
        """Raise ConfigError unless the actor can be run."""
        kind = type(self).__name__
        if not NAME_RE.fullmatch(self.name):
            raise ConfigError(
                f"actor {kind}: name {self.name!r} must be lowercase letters, digits, '-' or '_'"
            )
        if not self.consumes or not all(p.TYPE for p in self.consumes):
            raise ConfigError(f"actor {self.name}: `consumes` must list registered event types")
        if self.batch_size < 1 or self.concurrency < 1:
            raise ConfigError(f"actor {self.name}: batch_size and concurrency must be >= 1")
