"""Runs a node's actors: one durable pull consumer each on the node's HIVE stream, batches,
acks, bounded concurrency and restart with exponential back-off.

Each actor gets the durable consumer `actor-<name>-<node>` filtered to the subjects of the
families it consumes (`hive.*.<family>.>`); events of other types in those families are
recognised by their `Hive-Type` header (or, without one, after decoding) and acknowledged
unseen. Messages that cannot be decoded are logged, counted (`bad`) and acknowledged:
dead-lettering is the projector's job. A batch is acknowledged once `handle` returned; when it
raises, the batch is nak'ed with a delay (it is delivered again), the actor's `on_failure` and
`on_stop` are called and, after a back-off that doubles from `backoff[0]` up to `backoff[1]`
(reset by the next successful batch), a new incarnation starts with `on_start`. One failing
actor never stops the others or the node.

An actor with a `shared_key` (the embedder: its model) instead pulls the durable consumer
`actor-<name>-<key>` of the hub's HIVE, shared by the actors of every node with that key, so
JetStream hands each event to one of them. A leaf reaches it through the hub's JetStream
domain (`Options.hub`). While that consumer cannot be reached (the leaf is cut off, the hub is
down), the actor is `waiting`, not failed: it keeps its incarnation (see the embedder's
offline sweep) and pulls again once the hub answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import structlog
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import ServiceUnavailableError

from hivebrain.background import cancel_and_wait
from hivebrain.errors import ConfigError, EventError
from hivebrain.events import Event, LamportClock, decode
from hivebrain.events.subjects import H_TYPE, HIVE_STREAM, ROOT
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

log = structlog.get_logger(__name__)


#: What a pull or a consumer create raises while the server that holds the consumer cannot be
#: reached (timeouts are caught on their own: an idle pull times out too).
UNREACHABLE = (NoRespondersError, ServiceUnavailableError, ConnectionClosedError)


#: How many nodes' batches a shared consumer keeps in flight at once, at most.
SHARERS = 8


def consumer_name(actor: Actor, node: str) -> str:
    """`actor-<name>-<node>`, or `actor-<name>-<key>` for a consumer shared by nodes."""
    return f"actor-{actor.name}-{actor.shared_key() or node}"


def consumer_config(actor: Actor, node: str, ack_wait: float) -> ConsumerConfig:
    """The durable consumer of `actor` on `node`: its families' subjects, explicit acks, at
    most one full batch per concurrent pull awaiting its ack."""
    subjects = [f"{ROOT}.*.{family}.>" for family in actor.families()]
    shared = actor.shared_key() is not None
    name = consumer_name(actor, node)
    return ConsumerConfig(
        name=name,
        durable_name=name,
        description=f"hivebrain actor {actor.name}",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        # A shared consumer serves the batches of several nodes at once.
        max_ack_pending=actor.batch_size * actor.concurrency * (SHARERS if shared else 1),
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=subjects if len(subjects) > 1 else None,
    )


@dataclass(frozen=True)
class Options:
    stream: str = HIVE_STREAM
    fetch_timeout: float = 1.0  # an idle pull waits this long; also bounds stop's latency
    ack_wait: float = 30.0  # a running `handle` keeps its batch alive with progress acks
    backoff: tuple[float, float] = (0.5, 30.0)
    hub: str | None = None  # a leaf's hub (JetStream domain): where shared consumers live
    max_restarts: int | None = None  # None: restart forever; else `failed` after that many
    drain_timeout: float = 30.0  # how long `stop` waits for batches in flight


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class _Supervisor:
    """One actor: its incarnations, its pulls and its figures."""

    def __init__(self, actor: Actor, runtime: ActorRuntime) -> None:
        self.actor = actor
        self._rt = runtime
        self._opt = runtime.options
        self.consumer = consumer_name(actor, runtime.node)
        shared_remote = actor.shared_key() is not None and self._opt.hub is not None
        self.js = (
            runtime.bus.nc.jetstream(domain=self._opt.hub, timeout=5.0)
            if shared_remote
            else runtime.bus.js
        )
        self._types = actor.types()
        self._delay = self._opt.backoff[0]
        self.figures = ActorStats(actor.name, "starting")
        self.task: asyncio.Task[None] | None = None

    def _set(self, **changes: Any) -> None:
        self.figures = replace(self.figures, **changes)

    def _count(self, **increments: int) -> None:
        self._set(**{k: getattr(self.figures, k) + v for k, v in increments.items()})

    async def run(self) -> None:
        stopping = self._rt.stopping
        while not stopping.is_set():
            self._set(state="starting")
            started = False
            try:
                await self.actor.on_start(self._rt.context)
                started = True
                if await self._create_consumer():
                    self._set(state="running")
                    failure = await self._serve()
                else:
                    failure = None  # stopped while waiting for the consumer's server
            except Exception as exc:
                failure = exc
            if failure is None:
                await self._on_stop()
                break
            self._count(failures=1)
            self._set(last_error=_describe(failure))
            try:
                self.actor.on_failure(failure)
            except Exception:
                log.exception("actor.on_failure_raised", actor=self.actor.name)
            if started:
                await self._on_stop()
            limit = self._opt.max_restarts
            if limit is not None and self.figures.restarts >= limit:
                self._set(state="failed")
                log.error("actor.gave_up", actor=self.actor.name, restarts=limit)
                return
            self._set(state="backing_off")
            log.warning("actor.backing_off", actor=self.actor.name, seconds=self._delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._delay)
            self._delay = min(self._delay * 2, self._opt.backoff[1])
            if stopping.is_set():
                break
            self._count(restarts=1)
        self._set(state="stopped")

    async def _on_stop(self) -> None:
        try:
            await self.actor.on_stop()
        except Exception as exc:
            log.warning("actor.on_stop_failed", actor=self.actor.name, error=_describe(exc))

    async def _create_consumer(self) -> bool:
        """Create (or update) the durable consumer, waiting while its server is unreachable;
        False when stopped first."""
        config = consumer_config(self.actor, self._rt.node, self._opt.ack_wait)
        while not self._rt.stopping.is_set():
            try:
                await self.js.add_consumer(self._opt.stream, config=config)
                return True
            except (*UNREACHABLE, TimeoutError):
                self._set(state="waiting")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._rt.stopping.wait(), self._opt.fetch_timeout)
        return False

    async def _serve(self) -> Exception | None:
        """Pull and handle batches until stopping (None) or the first failure (returned)."""
        js = self.js
        failures: list[Exception] = []
        subs = [
            await js.pull_subscribe_bind(durable=self.consumer, stream=self._opt.stream)
            for _ in range(self.actor.concurrency)
        ]
        try:
            await asyncio.gather(*(self._pull(sub, failures) for sub in subs))
        finally:
            for sub in subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        return failures[0] if failures else None

    async def _pull(self, sub: Any, failures: list[Exception]) -> None:
        # Not cancelled on stop: a pull ends on its own within fetch_timeout, so no message
        # is left delivered to a subscription nobody reads.
        while not self._rt.stopping.is_set() and not failures:
            try:
                msgs = await sub.fetch(self.actor.batch_size, timeout=self._opt.fetch_timeout)
                self._set(state="running")
            except TimeoutError:  # nothing pending: idle (or, shared, the hub out of reach)
                continue
            except UNREACHABLE:
                self._set(state="waiting")
                await asyncio.sleep(self._opt.fetch_timeout)
                continue
            except Exception as exc:
                failures.append(exc)
                return
            try:
                await self._process(msgs)
            except Exception as exc:
                failures.append(exc)
                return

    async def _process(self, msgs: list[Any]) -> None:
        batch: list[tuple[Any, Event]] = []
        for msg in msgs:
            kind = (msg.headers or {}).get(H_TYPE)
            if kind is not None and kind not in self._types:
                await msg.ack()
                continue
            try:
                event = decode(msg.data)
            except EventError as exc:
                log.warning("actor.bad_message", actor=self.actor.name, error=str(exc))
                self._count(bad=1)
                await msg.ack()
                continue
            if event.type in self._types:
                batch.append((msg, event))
            else:
                await msg.ack()
        if not batch:
            return
        messages = [m for m, _ in batch]
        keep_alive: asyncio.Task[None] = asyncio.create_task(self._keep_alive(messages))
        try:
            await self.actor.handle([e for _, e in batch])
        except Exception:
            for msg, _ in batch:
                with contextlib.suppress(Exception):
                    await msg.nak(delay=self._delay)
            raise
        finally:
            await cancel_and_wait(keep_alive)
        for msg, _ in batch[:-1]:
            await msg.ack()
        await batch[-1][0].ack_sync(timeout=5.0)  # after the others: confirms the whole batch
        self._count(processed=len(batch))
        self._delay = self._opt.backoff[0]

    async def _keep_alive(self, msgs: list[Any]) -> None:
        """While `handle` runs past a third of ack_wait, tell the server it is in progress."""
        while True:
            await asyncio.sleep(self._opt.ack_wait / 3)
            for msg in msgs:
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def refresh_lag(self) -> None:
        try:
            info = await self.js.consumer_info(self._opt.stream, self.consumer, timeout=2)
        except Exception:
            return  # not created yet, or NATS unreachable: keep the last figure
        self._set(lag=int(info.num_pending or 0) + int(info.num_ack_pending or 0))


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
        self._supervisors: dict[str, _Supervisor] = {}
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
        supervisor = _Supervisor(actor, self)
        self._supervisors[actor.name] = supervisor
        if self._started:
            self._launch(supervisor)

    def _launch(self, supervisor: _Supervisor) -> None:
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
                log.warning("actors.stats_write_failed", error=_describe(exc))

    async def _write_stats(self) -> None:
        if self._table is not None:
            await asyncio.to_thread(self._table.replace, self.stats(), time.time())
