"""The consolidator: applies every agent's working-memory policy as memories arrive.

`hivebrain consolidate` does the same once, on demand; this actor does it whenever a batch of
memory events was handled (a new working memory can push an agent over its max count) and
every `every` seconds (memories age without any event). The moves are ordinary `memory.moved`
events (planned by `projections/consolidation_queries.py`): nothing is deleted, and a node that
sees the same memories plans the same moves, so several consolidators only repeat harmless
moves.
"""

from __future__ import annotations

import asyncio

import structlog

from hivebrain.background import cancel_and_wait
from hivebrain.events import Event
from hivebrain.events.memory import MemoryMoved, MemoryStored
from hivebrain.projections.consolidation_queries import Move, plan

from .actor import Actor, Context
from .registry import register

log = structlog.get_logger(__name__)


@register
class ConsolidatorActor(Actor):
    name = "consolidator"
    consumes = (MemoryStored, MemoryMoved)
    batch_size = 500

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self.moved = 0
        self._sent: set[str] = set()  # moved by this node, not yet seen moved
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def on_start(self, ctx: Context) -> None:
        await super().on_start(ctx)
        self._timer = asyncio.create_task(self._tick(), name="consolidator-timer")

    async def on_stop(self) -> None:
        if self._timer is not None:
            await cancel_and_wait(self._timer)
            self._timer = None

    async def handle(self, events: list[Event]) -> None:
        if any(
            isinstance(e.payload, MemoryStored) and e.payload.space == "working" for e in events
        ):
            await self.consolidate()

    async def consolidate(self) -> list[Move]:
        """Publish the moves the policies call for now; returns them."""
        async with self._lock:
            moves = plan(self.ctx.store.connection, self.ctx.clock.now())
            pending = {m.memory for m in moves}
            self._sent &= pending  # what the projection shows moved is done
            fresh = [m for m in moves if m.memory not in self._sent]
            for move in fresh:
                payload = MemoryMoved(space=move.to, from_space="working", reason=move.reason)
                await self.ctx.publish(payload, entity=move.memory)
                self._sent.add(move.memory)
            if fresh:
                self.moved += len(fresh)
                log.info("consolidator.moved", memories=len(fresh))
            return fresh

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.consolidate()
            except Exception as exc:  # the next tick tries again
                log.warning("consolidator.failed", error=f"{type(exc).__name__}: {exc}")
