"""Feeds a node's streams into its SQLite projection.

Messages from `EVENTS` (own writes, visible at once, also offline) and `HIVE` (everyone's) are
buffered and applied in batches on one dedicated writer thread; each batch commits its rows and
the streams' positions in one transaction (`ProjectionStore.apply_batch`), so a crash at any
point resumes exactly where the last commit stopped. Duplicates (an own event arriving again
through HIVE) are dropped by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from hivebrain.events.subjects import EVENTS_STREAM, H_MSG_ID, HIVE_STREAM, ROOT
from hivebrain.projections.store import BatchResult, Delivery, ProjectionStore

from .bus import Bus, RawMessage
from .errors import WriterGone
from .projection_writer import ProcessWriter, ThreadWriter

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
        self._writer: ThreadWriter | ProcessWriter = (
            ProcessWriter(store.path, store.strategy) if separate_process else ThreadWriter(store)
        )
        self._gone: WriterGone | None = None
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
        self.positions: dict[str, int] = {}
        self.totals = BatchResult(applied=0, duplicates=0, dead=0, max_lamport=0)

    async def start(self) -> None:
        # Index what an interrupted replay left unindexed (nothing, usually: cheap).
        await self._run("finish_pending")
        for stream in self._streams:
            self.positions[stream] = await self._run("position", stream)
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
        """Wait until `stream` is applied up to `seq`; False on timeout, WriterGone when the
        writer process died."""

        async def reached() -> None:
            async with self._applied:
                await self._applied.wait_for(
                    lambda: self.positions.get(stream, 0) >= seq or self._gone is not None
                )
            self._check_writer()

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            return False
        return True

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
                self._check_writer()
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

        Batches leave the keyword index to one pass at the end, and the WAL to one checkpoint
        (`ProjectionStore.begin_replay`, `end_replay`): memories are searchable by keyword once
        `replay` returns. Should a replay stop half-way, the rows it committed are indexed by
        the next `start` or `replay`."""
        self._finish_batches = False
        await self._run("begin_replay")
        for stream in self._streams:
            self.positions[stream] = await self._run("position", stream)
            if progress is not None and self.positions[stream]:
                progress(self.positions[stream])
        self._task = asyncio.create_task(self._apply_loop(), name="projector")
        await self._drain(HIVE_STREAM, progress)
        if EVENTS_STREAM in self._streams:
            skip = min(self.own_sourced, await self._bus.last_seq(EVENTS_STREAM))
            if skip > self.positions[EVENTS_STREAM]:
                # Everything up to `skip` is applied through HIVE already.
                if progress is not None:
                    progress(skip - self.positions[EVENTS_STREAM])
                await self._run("advance", EVENTS_STREAM, skip)
                self.positions[EVENTS_STREAM] = skip
            await self._drain(EVENTS_STREAM, progress)
        # The writer runs one call at a time, in order: every batch handed to it before this
        # line is applied before `finish_pending` runs; later ones finish themselves.
        self._finish_batches = True
        await self._run("end_replay")

    async def _drain(self, stream: str, progress: Progress | None) -> None:
        """Apply `stream` from its position up to its last sequence at the time of the call."""
        target = await self._bus.last_seq(stream)
        start = self.positions[stream]
        if start >= target:
            return
        sub = await self._bus.consume(stream, start + 1, self._on_message)
        reported = start
        try:
            async with self._applied:
                while self.positions[stream] < target:
                    self._check_writer()
                    await self._applied.wait()
                    if progress is not None:
                        now = min(self.positions[stream], target)
                        progress(now - reported)
                        reported = now
        finally:
            await sub.unsubscribe()

    def _note_source(self, msg: RawMessage) -> None:
        # "EVENTS 1234 > > hive.n1.memory.m1 ...": the source stream and its sequence.
        header = msg.headers.get("Nats-Stream-Source", "")
        parts = header.split(" ", 2)
        if len(parts) >= 2 and parts[1].isdigit():
            self.own_sourced = max(self.own_sourced, int(parts[1]))

    async def _on_message(self, msg: RawMessage) -> None:
        if (
            self._own_prefix
            and msg.stream == HIVE_STREAM
            and msg.subject.startswith(self._own_prefix)
        ):
            self._note_source(msg)
        self._buffer.append(
            Delivery(msg.stream, msg.seq, msg.data, msg.headers.get(H_MSG_ID), msg.subject)
        )
        self._wake.set()
        if len(self._buffer) >= self._high_water and not self._closing:
            self._room.clear()
            await self._room.wait()  # stalls this subscription; flow control holds the server

    async def _apply_loop(self) -> None:
        while not (self._closing and not self._buffer):
            await self._wake.wait()
            self._wake.clear()
            while self._buffer:
                batch = self._buffer[: self._batch_size]
                del self._buffer[: self._batch_size]
                if len(self._buffer) < self._high_water:
                    self._room.set()
                await self._apply(batch)

    async def _apply(self, batch: list[Delivery]) -> None:
        try:
            result = await self._run("apply_batch", batch, finish=self._finish_batches)
        except WriterGone as exc:
            # Nothing more can be applied; whoever waits for progress hears why.
            log.error("projector.writer_gone", size=len(batch))
            self._gone = exc
            self._buffer.clear()
            self._closing = True
            self._room.set()
            async with self._applied:
                self._applied.notify_all()
            return
        except Exception:
            # The batch is not committed; positions are unchanged. Put it back and retry;
            # when stopping, leave it: it is read again from the stream on the next start.
            log.exception("projector.batch_failed", size=len(batch))
            if self._closing:
                # Nothing after the failed batch may commit (its positions would cover it);
                # all of it is read again from the streams on the next start.
                self._buffer.clear()
                return
            self._buffer[:0] = batch
            await asyncio.sleep(1.0)
            self._wake.set()
            return
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
        async with self._applied:
            self._applied.notify_all()

    async def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of the store on the writer (one call at a time, in order)."""
        return await self._writer.call(method, *args, **kwargs)

    def _check_writer(self) -> None:
        if self._gone is not None:
            raise self._gone
