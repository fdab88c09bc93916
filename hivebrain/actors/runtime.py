"""Runs a node's actors: one durable pull consumer each on the node's HIVE stream, batches,
acks, bounded concurrency and restart with exponential back-off.

Why and how: docs/design.md section 10, `hivebrain/actors/runtime.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog

from hivebrain.background import cancel_and_wait
from hivebrain.errors import ConfigError
from hivebrain.events import LamportClock
from hivebrain.projections.store import ProjectionStore
from hivebrain.transport.bus import Bus
from hivebrain.transport.event_writer import EventWriter, Publish

from .actor import (
    Actor,
    Clock,
    Context,
    ProjectionReader,
    SystemClock,
    always_online,
)
from .statsdb import ActorStats, StatsTable
from .supervisor import Options, Supervisor, describe

log = structlog.get_logger(__name__)


class ActorRuntime:
    """A node's actors. `add` them, `start`, read `stats`, `stop`.

    `stats_path`: a SQLite file (the node's database) where the figures are written every
    `stats_interval` seconds into the node-local table `actor_stats`.
    """

    def __init__(
        self,
        bus: Bus,
        node: str,
        publish: Publish,
        *,
        store: ProjectionReader,
        clock: Clock | None = None,
        options: Options | None = None,
        stats_path: Path | str | None = None,
        stats_interval: float = 1.0,
        online: Callable[[], bool] = always_online,
    ) -> None:
        self.bus = bus
        self.node = node
        self.options = options or Options()
        self.context = Context(
            publish=publish, node=node, clock=clock or SystemClock(), store=store, online=online
        )
        self.stopping = asyncio.Event()
        self._supervisors: dict[str, Supervisor] = {}
        self._stats_path = stats_path
        self._stats_interval = stats_interval
        self._table: StatsTable | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._owned: list[Any] = []  # closed by stop(): what `for_node` opened
        self._started = False

    @classmethod
    async def for_node(
        cls,
        bus: Bus,
        node: str,
        clock: LamportClock,
        db_path: Path | str,
        actors: Iterable[Actor],
        online: Callable[[], bool] = always_online,
        **options: Any,
    ) -> ActorRuntime:
        """The runtime of a node process, started: events published through its own
        publisher and clock, projection reads through its own connection, stats into the
        node's database."""
        publisher = await bus.publisher()
        store = ProjectionStore(db_path)
        runtime = cls(
            bus,
            node,
            EventWriter(node, clock, publisher),
            store=store,
            stats_path=db_path,
            options=Options(**options),
            online=online,
        )
        runtime._owned = [publisher, store]
        try:
            for actor in actors:
                runtime.add(actor)
            await runtime.start()
        except BaseException:
            await runtime.stop()
            raise
        return runtime

    def add(self, actor: Actor) -> None:
        actor.check()
        if actor.name in self._supervisors:
            raise ConfigError(f"actor {actor.name!r} is added twice")
        supervisor = Supervisor(actor, self)
        self._supervisors[actor.name] = supervisor
        if self._started:
            self._launch(supervisor)

    def _launch(self, supervisor: Supervisor) -> None:
        supervisor.task = asyncio.create_task(
            supervisor.run(), name=f"actor-{supervisor.actor.name}"
        )

    async def start(self) -> None:
        if self._stats_path is not None:
            self._table = await asyncio.to_thread(StatsTable, self._stats_path)
        self._started = True
        for supervisor in self._supervisors.values():
            self._launch(supervisor)
        if self._table is not None:
            await self._write_stats()
            self._reporter = asyncio.create_task(self._report(), name="actor-stats")
        log.info("actors.started", node=self.node, actors=sorted(self._supervisors))

    async def stop(self) -> None:
        """Stop pulling, let batches in flight finish (up to drain_timeout), call on_stop."""
        self.stopping.set()
        tasks = [s.task for s in self._supervisors.values() if s.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.options.drain_timeout)
            for task in late:
                log.warning("actor.stop_timed_out", task=task.get_name())
            await asyncio.gather(*(cancel_and_wait(t) for t in late), return_exceptions=True)
        if self._reporter is not None:
            await cancel_and_wait(self._reporter)
            self._reporter = None
        if self._table is not None:
            with contextlib.suppress(Exception):
                await self._write_stats()
            self._table.close()
            self._table = None
        for resource in self._owned:
            with contextlib.suppress(Exception):
                result = resource.close()
                if asyncio.iscoroutine(result):
                    await result
        self._owned = []
        self._started = False

    def stats(self) -> list[ActorStats]:
        """Each actor's figures, by name; `lag` as of the last refresh (about a second)."""
        return [self._supervisors[name].figures for name in sorted(self._supervisors)]

    async def refresh(self) -> list[ActorStats]:
        """Read every actor's lag from its consumer now, then return `stats()`."""
        await asyncio.gather(*(s.refresh_lag() for s in self._supervisors.values()))
        return self.stats()

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self._stats_interval)
            try:
                await self.refresh()
                await self._write_stats()
            except Exception as exc:
                log.warning("actors.stats_write_failed", error=describe(exc))

    async def _write_stats(self) -> None:
        if self._table is not None:
            await asyncio.to_thread(self._table.replace, self.stats(), time.time())
