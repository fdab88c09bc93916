"""Publish: memory.stored events per second from one process into a file-backed stream.

hivebrain: a LamportClock reserving blocks of 1,000 in a SQLite clock store (as the node does),
`Event.new(MemoryStored(...))`, then `Publisher.publish` (encode, headers, in-flight acks);
the clock is stopped when every ack is in.
Baseline: nats-py `js.publish_async` of the same pre-encoded bodies and headers, then every
ack future awaited, into fresh streams.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hivebrain.events import Event, LamportClock, encode
from hivebrain.events.memory import MemoryStored
from hivebrain.events.subjects import EVENTS_STREAM, headers, subject
from hivebrain.projections import SqliteClockStore
from hivebrain.transport.bus import Bus

from .common import NODE, Corpus, Figure, Progress, fresh_streams, say

TARGET = 25_000.0
#: The baseline (raw `publish_async`) where TARGET was set.
REFERENCE_BASELINE = 73_000.0


def _inputs(n: int) -> list[tuple[str, tuple[str, ...]]]:
    corpus = Corpus(seed=1)
    return [(corpus.text(), corpus.tags()) for _ in range(n)]


async def _hivebrain(bus: Bus, scratch: Path, inputs: list[tuple[str, tuple[str, ...]]]) -> float:
    clock = LamportClock(SqliteClockStore(scratch / "publish-clock.db"), block=1000)
    publisher = await bus.publisher()
    progress = Progress("hivebrain publish", len(inputs))
    try:
        started = time.perf_counter()
        for text, tags in inputs:
            payload = MemoryStored(text=text, tags=tags, agent="bench", source="bench")
            event = Event.new(payload, node=NODE, lamport=clock.tick())
            await publisher.publish(event)
            progress.update()
        await publisher.flush()
        seconds = time.perf_counter() - started
        progress.finish()
    finally:
        await publisher.close()
    stats = publisher.stats
    if stats.published != len(inputs) or stats.failed or stats.duplicates:
        raise RuntimeError(f"hivebrain publish lost or repeated events: {stats}")
    return seconds


async def _baseline(bus: Bus, inputs: list[tuple[str, tuple[str, ...]]]) -> float:
    messages = []
    for lamport, (text, tags) in enumerate(inputs, start=1):
        payload = MemoryStored(text=text, tags=tags, agent="bench", source="bench")
        event = Event.new(payload, node=NODE, lamport=lamport)
        messages.append((subject(event), encode(event), headers(event)))
    js = bus.nc.jetstream()
    progress = Progress("nats-py publish_async", len(messages))
    started = time.perf_counter()
    futures = []
    for subj, data, hdrs in messages:
        futures.append(await js.publish_async(subj, data, headers=hdrs))
        progress.update()
    acks = await asyncio.gather(*futures)
    seconds = time.perf_counter() - started
    progress.finish()
    if len({ack.seq for ack in acks}) != len(messages) or any(ack.duplicate for ack in acks):
        raise RuntimeError("baseline publish lost or repeated events")
    return seconds


async def run(bus: Bus, scratch: Path, n: int) -> list[Figure]:
    say(f"publish: generating {n:,} texts")
    inputs = _inputs(n)

    await fresh_streams(bus)
    hive_s = await _hivebrain(bus, scratch, inputs)
    if await bus.last_seq(EVENTS_STREAM) != n:
        raise RuntimeError("EVENTS does not hold every published event")

    await fresh_streams(bus)
    base_s = await _baseline(bus, inputs)
    if await bus.last_seq(EVENTS_STREAM) != n:
        raise RuntimeError("EVENTS does not hold every baseline event")

    say(f"publish: hivebrain {hive_s:.2f}s, baseline {base_s:.2f}s")
    return [
        Figure(
            metric=f"publish memory.stored ({n:,} events)",
            unit="events/s",
            hivebrain=n / hive_s,
            baseline=n / base_s,
            target=TARGET,
            reference_baseline=REFERENCE_BASELINE,
            higher_is_better=True,
            notes={"hivebrain_s": hive_s, "baseline_s": base_s, "n": n},
        )
    ]
