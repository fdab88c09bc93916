"""Feeds a node's streams into its SQLite projection.

Messages from `EVENTS` (own writes, visible at once, also offline) and `HIVE` (everyone's) are
applied in batches by one writer (`writer.py`: a thread, or for replays a process that holds
two batches at once); each batch commits its rows and the streams' positions in one transaction
(`ProjectionStore.apply_batch`), so a crash resumes exactly where the last commit stopped.
Duplicates (an own event arriving again through HIVE) are dropped by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import structlog

from hivebrain.errors import OutOfTurn, ProjectionError, WriterGone
from hivebrain.events.subjects import EVENTS_STREAM, H_MSG_ID, HIVE_STREAM, ROOT
from hivebrain.node.writer import ProcessWriter, StoreWriter, ThreadWriter
from hivebrain.projections.store import BatchResult, Delivery, ProjectionStore
from hivebrain.transport.bus import Bus, RawMessage

log = structlog.get_logger(__name__)

Progress = Callable[[int], None]


class Projector:
    def __init__(
        self,
        bus: Bus,
        store: ProjectionStore,
        *,
        node: str | None = None,
        streams: tuple[str, ...] = (EVENTS_STREAM, HIVE_STREAM),
        batch_size: int = 2000,
        high_water: int = 20_000,
        on_batch: Callable[[BatchResult], None] | None = None,
        separate_process: bool = False,
    ) -> None:
        """`separate_process`: apply batches in a child process on the same database file
        (for replays: see `projection_writer`); otherwise on a thread of this process."""
        self._bus = bus
        self._streams = streams
        self._batch_size = batch_size
        self._high_water = high_water
        self._on_batch = on_batch
        self._store = store
        # Batches with the writer at once (see `_apply_loop`): two for a writer process, which
        # is kept busy through a replay; one for a running node, whose batches are small.
        self._depth = 2 if separate_process else 1
        self._writer: StoreWriter = (
            ProcessWriter(store.path, store.strategy, store.max_clock_jump)
            if separate_process
            else ThreadWriter(store)
        )
        self._halted: ProjectionError | None = None  # why nothing more can be applied
        self._buffer: list[Delivery] = []
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._applied = asyncio.Condition()
        self._subs: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # During `replay`, batches leave the keyword index for one pass at the end.
        self._finish_batches = True
        # The highest own EVENTS sequence seen in HIVE (from its Nats-Stream-Source header).
        self._own_prefix = f"{ROOT}.{node}." if node else None
        self.own_sourced = 0
        self.positions: dict[str, int] = {}  # committed
        self.totals = BatchResult(applied=0, duplicates=0, dead=0, max_lamport=0)
        self.held_back = 0  # batches refused as OutOfTurn (sent behind one that failed)

    async def start(self) -> None:
        # Index what an interrupted replay left unindexed (nothing, usually: cheap).
        await self._writer.finish_pending()
        for stream in self._streams:
            self.positions[stream] = await self._writer.position(stream)
        self._task = asyncio.create_task(self._apply_loop(), name="projector")
        for stream in self._streams:
            sub = await self._bus.consume(stream, self.positions[stream] + 1, self._on_message)
            self._subs.append(sub)
        log.info("projector.started", positions=self.positions)

    async def stop(self) -> None:
        self._closing = True
        self._room.set()  # a delivery stalled on a full buffer must not hold the unsubscribe
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sub.unsubscribe(), 5.0)
        self._subs.clear()
        if self._task is not None:  # the loop applies what was received, then ends
            self._wake.set()
            await self._task
            self._task = None
        await self._writer.close()

    async def wait_for(self, stream: str, seq: int, timeout: float = 10.0) -> bool:
        """Wait until `stream` is applied up to `seq`; False on timeout. Raises WriterGone
        when the writer process died, ProjectionError when the projector stopped otherwise."""

        async def reached() -> None:
            async with self._applied:
                await self._applied.wait_for(
                    lambda: self.positions.get(stream, 0) >= seq or self._halted is not None
                )
            self._check_running()

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            return False
        return True

    async def scrub_erased(self, event_ids: list[str]) -> None:
        """`ProjectionStore.scrub_erased`, through the writer, in order with the batches."""
        await self._writer.scrub_erased(event_ids)

    async def catch_up(self, progress: Progress | None = None) -> dict[str, int]:
        """Apply every message stored in the streams when called, then return the targets.
        For rebuilds and tools; `start` must have been called. `progress` receives increments
        that add up to the targets' total, counting what was applied before the call."""
        targets = {s: await self._bus.last_seq(s) for s in self._streams}
        done_before = sum(min(self.positions[s], targets[s]) for s in self._streams)
        last_reported = done_before
        if progress is not None and done_before:
            progress(done_before)

        def done() -> int:
            return sum(min(self.positions[s], targets[s]) for s in self._streams)

        async with self._applied:
            while done() < sum(targets.values()):
                self._check_running()
                await self._applied.wait()
                if progress is not None:
                    now = done()
                    progress(now - last_reported)
                    last_reported = now
        return targets

    async def replay(self, progress: Progress | None = None) -> None:
        """Rebuild path, instead of `start`: apply HIVE up to its last message, then only the
        part of EVENTS that HIVE has not sourced yet, so each event is read once. `progress`
        receives increments adding up to the two streams' last sequences.

        Batches leave the keyword index and the WAL checkpoint to one pass at the end
        (`ProjectionStore.begin_replay`, `end_replay`); rows committed by a replay that stopped
        half-way are indexed by the next `start` or `replay`."""
        self._finish_batches = False
        # A writer process takes a while to start: the first messages are read meanwhile (the
        # writer runs calls in order, so `begin_replay` still comes before every batch).
        ready = asyncio.ensure_future(self._writer.begin_replay())
        # Awaited below; should the replay fail before that, its error is not reported twice.
        ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        for stream in self._streams:
            self.positions[stream] = await self._read_position(stream)
            if progress is not None and self.positions[stream]:
                progress(self.positions[stream])
        self._task = asyncio.create_task(self._apply_loop(), name="projector")
        await self._drain(HIVE_STREAM, progress, ready)
        await ready
        if EVENTS_STREAM in self._streams:
            skip = min(self.own_sourced, await self._bus.last_seq(EVENTS_STREAM))
            if skip > self.positions[EVENTS_STREAM]:
                # Everything up to `skip` is applied through HIVE already.
                if progress is not None:
                    progress(skip - self.positions[EVENTS_STREAM])
                await self._writer.advance(EVENTS_STREAM, skip)
                self.positions[EVENTS_STREAM] = skip
            await self._drain(EVENTS_STREAM, progress)
        # The writer runs one call at a time, in order: every batch handed to it before this
        # line is applied before `finish_pending` runs; later ones finish themselves.
        self._finish_batches = True
        await self._writer.settle()
        await self._writer.end_replay()

    async def _read_position(self, stream: str) -> int:
        """The stored position of `stream`. A writer process has a connection of its own, so
        this process's connection reads it at once, while the writer may still be starting."""
        if isinstance(self._writer, ProcessWriter):
            return self._store.position(stream)
        return int(await self._writer.position(stream))

    async def _drain(
        self, stream: str, progress: Progress | None, ready: Awaitable[Any] | None = None
    ) -> None:
        """Apply `stream` from its position up to its last sequence at the time of the call.
        `ready`: awaited once the stream is being read (the writer's preparation)."""
        target = await self._bus.last_seq(stream)
        start = self.positions[stream]
        if start >= target:
            return
        sub = await self._bus.consume(stream, start + 1, self._on_message)
        reported = start
        try:
            if ready is not None:
                await ready
            async with self._applied:
                while self.positions[stream] < target:
                    self._check_running()
                    await self._applied.wait()
                    if progress is not None:
                        now = min(self.positions[stream], target)
                        progress(now - reported)
                        reported = now
        finally:
            await sub.unsubscribe()

    def _note_source(self, msg: RawMessage) -> int | None:
        """The EVENTS sequence of an own event read from HIVE, if its header says it."""
        # "EVENTS 1234 > > hive.n1.memory.m1 ...": the source stream and its sequence.
        header = msg.headers.get("Nats-Stream-Source", "")
        parts = header.split(" ", 2)
        if len(parts) >= 2 and parts[1].isdigit():
            seq = int(parts[1])
            self.own_sourced = max(self.own_sourced, seq)
            return seq
        return None

    async def _on_message(self, msg: RawMessage) -> None:
        if self._halted is not None:
            return  # nothing more is applied; read again from the stream on the next start
        origin = None
        if (
            self._own_prefix
            and msg.stream == HIVE_STREAM
            and msg.subject.startswith(self._own_prefix)
        ):
            origin = self._note_source(msg)
        self._buffer.append(
            Delivery(msg.stream, msg.seq, msg.data, msg.headers.get(H_MSG_ID), msg.subject, origin)
        )
        self._wake.set()
        if len(self._buffer) >= self._high_water and not self._closing:
            self._room.clear()
            await self._room.wait()  # stalls this subscription; flow control holds the server

    async def _apply_loop(self) -> None:
        """Hand batches to the writer, at most `_depth` at a time; account for them in order.

        While the writer applies one batch the next is already on its way, so it never waits
        for this process between batches. Each batch carries the positions the one before it
        leaves (`expect`): if a batch fails, the next refuses to commit (OutOfTurn) instead of
        moving the positions past the messages the failed one still holds; both are retried.
        """
        in_flight: deque[tuple[list[Delivery], asyncio.Future[Any]]] = deque()
        try:
            await self._feed(in_flight)
        except Exception as exc:  # a bug, or the caller's on_batch failing
            log.exception("projector.stopped")
            await self._halt(ProjectionError(f"the projector stopped: {exc!r}"), in_flight)
        if self._halted is None:  # stopped: a wait that is still on hears so, not silence
            await self._halt(ProjectionError("the projector was stopped"), in_flight)

    async def _feed(self, in_flight: deque[tuple[list[Delivery], asyncio.Future[Any]]]) -> None:
        while self._halted is None and not (self._closing and not self._buffer and not in_flight):
            while self._buffer and len(in_flight) < self._depth:
                batch = self._buffer[: self._batch_size]
                del self._buffer[: self._batch_size]
                if len(self._buffer) < self._high_water:
                    self._room.set()
                in_flight.append((batch, self._submit(batch, in_flight)))
            if not in_flight:
                await self._wake.wait()
                self._wake.clear()
                continue
            batch, future = in_flight[0]
            if len(in_flight) < self._depth and not self._closing:
                # Room for another batch (the buffer is empty): wait for this one to be
                # applied or for more messages, whichever comes first.
                self._wake.clear()
                more = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({future, more}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    more.cancel()
                if not future.done():
                    continue
            in_flight.popleft()
            outcome = await self._collect(batch, future, in_flight)
            if outcome == "halted":
                return
            if outcome == "failed":
                await self._retry_later(batch, in_flight)

    def _submit(
        self, batch: list[Delivery], in_flight: deque[tuple[list[Delivery], asyncio.Future[Any]]]
    ) -> asyncio.Future[Any]:
        # The positions the store will have once the batches already with the writer commit.
        ahead = dict(self.positions)
        for earlier, _ in in_flight:
            for d in earlier:
                if d.seq > ahead.get(d.stream, 0):
                    ahead[d.stream] = d.seq
        expect = {d.stream: ahead.get(d.stream, 0) for d in batch}
        return asyncio.ensure_future(
            self._writer.apply_batch(batch, finish=self._finish_batches, expect=expect)
        )

    async def _collect(
        self,
        batch: list[Delivery],
        future: asyncio.Future[Any],
        in_flight: deque[tuple[list[Delivery], asyncio.Future[Any]]],
    ) -> Literal["applied", "failed", "halted"]:
        """Wait for one batch handed to the writer: applied (and accounted for), failed
        (nothing of it committed), or halted (the writer process died: nothing more is
        applied)."""
        try:
            result = await future
        except WriterGone as exc:
            log.error("projector.writer_gone", size=len(batch))
            await self._halt(exc, in_flight)
            return "halted"
        except OutOfTurn:
            self.held_back += 1
            log.info("projector.batch_held_back", size=len(batch))
            return "failed"
        except Exception:
            log.exception("projector.batch_failed", size=len(batch))
            return "failed"
        await self._account(batch, result)
        return "applied"

    async def _account(self, batch: list[Delivery], result: BatchResult) -> None:
        self.totals = BatchResult(
            applied=self.totals.applied + result.applied,
            duplicates=self.totals.duplicates + result.duplicates,
            dead=self.totals.dead + result.dead,
            max_lamport=max(self.totals.max_lamport, result.max_lamport),
        )
        if result.dead:
            log.warning("projector.dead_lettered", count=result.dead)
        for delivery in batch:
            if delivery.seq > self.positions.get(delivery.stream, 0):
                self.positions[delivery.stream] = delivery.seq
        if self._on_batch is not None:
            self._on_batch(result)
        if not self._finish_batches:  # replaying
            self._writer.copy_wal()
        async with self._applied:
            self._applied.notify_all()

    async def _retry_later(
        self, failed: list[Delivery], in_flight: deque[tuple[list[Delivery], asyncio.Future[Any]]]
    ) -> None:
        """A batch was not committed (positions unchanged). The ones sent after it commit
        (other streams only) or are refused; the refused ones and the failed one go back to
        the front of the buffer, in order, for another try in a second. When stopping,
        nothing more commits: all of it is read again from the streams on the next start."""
        retry = list(failed)
        while in_flight:
            batch, future = in_flight.popleft()
            outcome = await self._collect(batch, future, in_flight)
            if outcome == "halted":
                return
            if outcome == "failed":
                retry.extend(batch)
        if self._closing:
            self._buffer.clear()
            return
        # What the store holds is what counts from here on.
        try:
            for stream in list(self.positions):
                self.positions[stream] = await self._writer.position(stream)
        except WriterGone as exc:
            await self._halt(exc, in_flight)
            return
        except ProjectionError:
            pass  # the positions accounted for so far stand
        self._buffer[:0] = retry
        await asyncio.sleep(1.0)

    async def _halt(
        self, exc: ProjectionError, in_flight: deque[tuple[list[Delivery], asyncio.Future[Any]]]
    ) -> None:
        """Nothing more is applied (the projector was stopped, its writer process died, or
        the loop itself failed); whoever waits for progress hears why. Batches still with the
        writer that committed are counted (an error there, e.g. from `on_batch`, is ignored)."""
        results = await asyncio.gather(*(f for _, f in in_flight), return_exceptions=True)
        for (batch, _), result in zip(in_flight, results, strict=True):
            if isinstance(result, BatchResult):
                with contextlib.suppress(Exception):
                    await self._account(batch, result)
        in_flight.clear()
        self._halted = exc
        self._buffer.clear()
        self._closing = True
        self._room.set()
        async with self._applied:
            self._applied.notify_all()

    def _check_running(self) -> None:
        if self._halted is not None:
            raise self._halted
