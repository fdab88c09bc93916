"""The brain as one program sees it: write events to the local node, read its projection.

Used by the CLI (and later the MCP server). Writes are events published to JetStream; a write
returns once JetStream acknowledged it and, when a node is running on the same data directory,
once the node's projection has applied it (read-your-writes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from hivebrain.config import Settings
from hivebrain.errors import ConfigError, NotFound
from hivebrain.events import Event, LamportClock, Payload, VersionRef
from hivebrain.events.memory import (
    MemoryEdited,
    MemoryForgotten,
    MemoryMoved,
    MemoryStored,
    Space,
    TagRemoval,
)
from hivebrain.events.subjects import EVENTS_STREAM
from hivebrain.node.lock import NodeLock
from hivebrain.projections.store import MemoryRow, ProjectionStore, SqliteClockStore
from hivebrain.transport.bus import Bus
from hivebrain.transport.event_writer import EventWriter
from hivebrain.transport.publisher import Ack, Publisher

#: How often a read-your-writes wait looks at the projection's position.
POLL_S = 0.002


@dataclass(frozen=True, slots=True)
class Written:
    event: Event
    ack: Ack
    applied: bool  # the local projection has it

    def as_dict(self) -> dict[str, Any]:
        """What a command or a tool answers about a write."""
        return {
            "id": self.event.entity,
            "event_id": self.event.event_id,
            "type": self.event.type,
            "lamport": self.event.lamport,
            "stream": self.ack.stream,
            "seq": self.ack.seq,
            "applied": self.applied,
        }


class Brain:
    def __init__(self, settings: Settings, bus: Bus, publisher: Publisher) -> None:
        self.settings = settings
        self.bus = bus
        self.publisher = publisher
        self.store = ProjectionStore(settings.db_path)
        self.clock = LamportClock(SqliteClockStore(settings.db_path))
        self.writer = EventWriter(settings.node, self.clock, publisher)

    async def publish(self, payload: Payload, *, entity: str | None = None) -> Written:
        event, ack = await self.writer.write(payload, entity=entity)
        applied = await self.wait_applied(ack)
        return Written(event, ack, applied)

    async def publish_acked(self, payload: Payload, *, entity: str | None = None) -> Written:
        """Publish and return once JetStream acknowledged it, without waiting for the local
        projection (`applied` is False): for callers that wait for their writes when they
        next read (the MCP server)."""
        event, ack = await self.writer.write(payload, entity=entity)
        return Written(event, ack, False)

    async def wait_applied(self, ack: Ack, timeout: float = 5.0) -> bool:
        """Read-your-writes: wait until the local projection has applied `ack` (True), or say
        it has not: no node runs on this data directory, or it did not within `timeout`."""
        if ack.stream != EVENTS_STREAM:
            return False
        if self.store.position(EVENTS_STREAM) >= ack.seq:
            return True
        if not NodeLock.held(self.settings.lock_file):
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.store.position(EVENTS_STREAM) < ack.seq:
            if loop.time() > deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True

    async def remember(self, payload: MemoryStored) -> Written:
        return await self.publish(payload)

    def memory(self, memory_id: str) -> MemoryRow:
        row = self.store.memory(memory_id)
        if row is None or row.forgotten:
            raise NotFound(f"no memory {memory_id!r} on this node")
        return row

    async def forget(self, memory_id: str, reason: str = "") -> Written:
        self.memory(memory_id)
        return await self.publish(MemoryForgotten(reason=reason), entity=memory_id)

    async def edit(
        self,
        memory_id: str,
        *,
        text: str | None = None,
        tag: Sequence[str] = (),
        untag: Sequence[str] = (),
    ) -> Written:
        row = self.memory(memory_id)
        if row.version is None:
            raise ConfigError(f"memory {memory_id} has no stored text on this node yet")
        removals = []
        for name in untag:
            observed = tuple(row.tag_events.get(name, ()))
            if not observed:
                raise ConfigError(f"memory {memory_id} has no tag {name!r}")
            removals.append(TagRemoval(tag=name, observed=observed))
        if text is None and not tag and not removals:
            raise ConfigError("nothing to edit: give --text, --tag or --untag")
        payload = MemoryEdited(
            base=VersionRef.of(row.version), text=text, tag=tuple(tag), untag=tuple(removals)
        )
        return await self.publish(payload, entity=memory_id)

    # -- spaces --------------------------------------------------------------------------------

    async def move(self, memory_id: str, space: Space, reason: str = "") -> Written:
        """Move a memory to another space (a move to the space it is in is harmless)."""
        row = self.memory(memory_id)
        moved = MemoryMoved(space=space, from_space=cast(Space | None, row.space), reason=reason)
        return await self.publish(moved, entity=memory_id)
