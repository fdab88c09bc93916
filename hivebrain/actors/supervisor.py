"""One actor's life on a node: pull batches from its consumer, hand them to the actor with
bounded concurrency, ack, and on failure restart it with exponential back-off."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.js.errors import ServiceUnavailableError

from hivebrain.background import cancel_and_wait
from hivebrain.errors import EventError
from hivebrain.events import Event, decode
from hivebrain.events.subjects import H_TYPE, HIVE_STREAM
from hivebrain.transport.bus import Bus

from .actor import (
    Actor,
    Context,
)
from .consumers import consumer_config, consumer_name
from .statsdb import ActorStats

log = structlog.get_logger(__name__)

#: What a pull or a consumer create raises while the server that holds the consumer cannot be
#: reached (timeouts are caught on their own: an idle pull times out too).
UNREACHABLE = (NoRespondersError, ServiceUnavailableError, ConnectionClosedError)


@dataclass(frozen=True)
class Options:
    stream: str = HIVE_STREAM
    fetch_timeout: float = 1.0  # an idle pull waits this long; also bounds stop's latency
    ack_wait: float = 30.0  # a running `handle` keeps its batch alive with progress acks
    backoff: tuple[float, float] = (0.5, 30.0)
    hub: str | None = None  # a leaf's hub (JetStream domain): where shared consumers live
    max_restarts: int | None = None  # None: restart forever; else `failed` after that many
    drain_timeout: float = 30.0  # how long `stop` waits for batches in flight


class Host(Protocol):
    """What a supervisor uses of the runtime that hosts it (an `ActorRuntime`)."""

    bus: Bus
    node: str
    options: Options
    context: Context
    stopping: asyncio.Event


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Supervisor:
    """One actor: its incarnations, its pulls and its figures."""

    def __init__(self, actor: Actor, runtime: Host) -> None:
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
            self._set(last_error=describe(failure))
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
            log.warning("actor.on_stop_failed", actor=self.actor.name, error=describe(exc))

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
