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
from hivebrain.errors import ConfigError
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
from hivebrain.node.node import NodeLock
from hivebrain.projections.sqlite import connect_async
from hivebrain.projections.store import MemoryRow, ProjectionStore, SqliteClockStore
from hivebrain.transport.bus import Bus
from hivebrain.transport.publisher import Ack, Publisher


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

    async def publish(self, payload: Payload, *, entity: str | None = None) -> Written:
        event = Event.new(
            payload, node=self.settings.node, lamport=self.clock.tick(), entity=entity
        )
        ack = await self.publisher.publish_wait(event)
        applied = await self.wait_applied(ack)
        return Written(event, ack, applied)

    async def publish_acked(self, payload: Payload, *, entity: str | None = None) -> Written:
        """Publish and return once JetStream acknowledged it, without waiting for the local
        projection (`applied` is False): for callers that wait for their writes when they
        next read (the MCP server)."""
        event = Event.new(
            payload, node=self.settings.node, lamport=self.clock.tick(), entity=entity
        )
        return Written(event, await self.publisher.publish_wait(event), False)

    async def wait_applied(self, ack: Ack, timeout: float = 5.0) -> bool:
        """Wait until the local node's projection has applied `ack` (False if no node runs)."""
        if ack.stream != EVENTS_STREAM or not NodeLock.held(self.settings.lock_file):
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with connect_async(self.settings.db_path) as db:  # reads off the event loop
            while loop.time() < deadline:
                async with db.execute(
                    "SELECT seq FROM positions WHERE stream = ?", (EVENTS_STREAM,)
                ) as cursor:
                    row = await cursor.fetchone()
                if row is not None and row[0] >= ack.seq:
                    return True
                await asyncio.sleep(0.01)
        return False

    async def remember(self, payload: MemoryStored) -> Written:
        return await self.publish(payload)

    def memory(self, memory_id: str) -> MemoryRow:
        row = self.store.memory(memory_id)
        if row is None or row.forgotten:
            raise ConfigError(f"no memory {memory_id!r} on this node")
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
