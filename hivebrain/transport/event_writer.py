"""Authoring events: the one place a payload becomes an event of this node (its name, the next
stamp of its Lamport clock) and is published to its EVENTS stream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol

from hivebrain.events import Event, Payload
from hivebrain.transport.publisher import Ack, Publisher


class Publish(Protocol):
    """Writes one event authored by this node and waits for JetStream's ack (e.g. an
    `EventWriter`, or `Brain.publish`, which also waits for the local projection)."""

    def __call__(self, payload: Payload, *, entity: str | None = None) -> Awaitable[object]: ...


class Stamps(Protocol):
    """Hands out Lamport stamps for local events (a `LamportClock`)."""

    def tick(self) -> int: ...


class EventWriter:
    """Stamps payloads as events of `node` with `clock` and publishes them with `publisher`.

    `send` returns once the event is handed to the publisher (its ack still to come, so many
    can be in flight); calling the writer waits for the ack, which makes it a `Publish`."""

    def __init__(self, node: str, clock: Stamps, publisher: Publisher) -> None:
        self.node = node
        self.clock = clock
        self.publisher = publisher

    def stamp(
        self,
        payload: Payload,
        *,
        entity: str | None = None,
        event_id: str | None = None,
        ts: float | None = None,
    ) -> Event:
        return Event.new(
            payload,
            node=self.node,
            lamport=self.clock.tick(),
            entity=entity,
            event_id=event_id,
            ts=ts,
        )

    async def send(
        self,
        payload: Payload,
        *,
        entity: str | None = None,
        event_id: str | None = None,
        ts: float | None = None,
    ) -> tuple[Event, asyncio.Future[Ack]]:
        event = self.stamp(payload, entity=entity, event_id=event_id, ts=ts)
        return event, await self.publisher.publish(event)

    async def write(self, payload: Payload, *, entity: str | None = None) -> tuple[Event, Ack]:
        event = self.stamp(payload, entity=entity)
        return event, await self.publisher.publish_wait(event)

    async def __call__(self, payload: Payload, *, entity: str | None = None) -> Ack:
        return (await self.write(payload, entity=entity))[1]
