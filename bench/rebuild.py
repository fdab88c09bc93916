"""Rebuild: replay every memory event into a fresh projection, as `projections rebuild` does.

EVENTS is filled with memory events (mostly `memory.stored`, plus edits, reinforcements,
moves and tombstones) and HIVE sources it, as on a single node, so a rebuild reads every event
twice (once per stream) and drops the second copy by event id. Events/s counts distinct events.
Baseline: one ordered consumer with a callback over EVENTS, msgpack-decoding each body.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
from nats.js.api import ConsumerConfig, DeliverPolicy

from hivebrain.events import Event, Payload, Stamp, VersionRef, encode
from hivebrain.events.memory import (
    SPACES,
    MemoryEdited,
    MemoryForgotten,
    MemoryMoved,
    MemoryReinforced,
    MemoryStored,
)
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM, headers, subject
from hivebrain.node.projector import Projector
from hivebrain.projections import ProjectionStore
from hivebrain.transport.bus import Bus

from .common import NODE, Corpus, Figure, Progress, fresh_streams, say

TARGET = 25_000.0
#: The baseline (raw ordered-consumer read + decode) where TARGET was set.
REFERENCE_BASELINE = 140_000.0
TS0 = 1_750_000_000.0


def memory_events(n: int, seed: int = 2) -> Iterator[Event]:
    """n memory events: about 85% stored, 8% edited, 5% reinforced, 1% moved, 1% forgotten."""
    corpus = Corpus(seed=seed)
    rng = random.Random(seed)
    memories: list[str] = []
    version: dict[str, Stamp] = {}
    for lamport in range(1, n + 1):
        roll = rng.random()
        entity: str | None = None
        payload: Payload
        if roll < 0.85 or len(memories) < 100:
            payload = MemoryStored(
                text=corpus.text(),
                tags=corpus.tags(),
                agent=rng.choice(("default", "coder", "assistant", "observer")),
                space=rng.choice(SPACES),
                source="bench",
                confidence=round(rng.uniform(0.5, 1.0), 2),
            )
        else:
            entity = rng.choice(memories)
            if roll < 0.93:
                payload = MemoryEdited(
                    base=VersionRef.of(version[entity]), text=corpus.text(), tag=corpus.tags()
                )
            elif roll < 0.98:
                payload = MemoryReinforced(amount=rng.choice((0.5, 1.0, 2.0)))
            elif roll < 0.99:
                payload = MemoryMoved(space=rng.choice(SPACES), reason="bench")
            else:
                payload = MemoryForgotten(reason="bench")
        event = Event.new(payload, node=NODE, lamport=lamport, entity=entity, ts=TS0 + lamport)
        if isinstance(payload, MemoryStored):
            memories.append(event.entity)
        if isinstance(payload, MemoryStored | MemoryEdited):
            version[event.entity] = event.stamp
        yield event


async def fill(bus: Bus, n: int) -> None:
    """Write n memory events to EVENTS and wait until HIVE has sourced them all."""
    await fresh_streams(bus)
    js = bus.nc.jetstream()
    progress = Progress("writing EVENTS", n)
    futures: list[asyncio.Future[Any]] = []
    for event in memory_events(n):
        futures.append(
            await js.publish_async(subject(event), encode(event), headers=headers(event))
        )
        progress.update()
    await asyncio.gather(*futures)
    progress.finish()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while (sourced := await bus.last_seq(HIVE_STREAM)) < n:
        if loop.time() > deadline:
            raise RuntimeError(f"HIVE sourced only {sourced:,} of {n:,} events")
        await asyncio.sleep(0.2)


async def _baseline(bus: Bus, n: int) -> float:
    done = asyncio.Event()
    count = 0

    async def on_msg(msg: Any) -> None:
        nonlocal count
        msgpack.unpackb(msg.data, raw=False, strict_map_key=True)
        count += 1
        if count >= n:
            done.set()

    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=1)
    started = time.perf_counter()
    sub = await bus.js.subscribe(
        "hive.>", stream=EVENTS_STREAM, ordered_consumer=True, config=config, cb=on_msg
    )
    await done.wait()
    seconds = time.perf_counter() - started
    await sub.unsubscribe()
    return seconds


async def _hivebrain(bus: Bus, scratch: Path, n: int) -> tuple[float, dict[str, Any]]:
    store = ProjectionStore(scratch / "rebuild.db")
    try:
        store.reset()
        total = sum([await bus.last_seq(s) for s in (EVENTS_STREAM, HIVE_STREAM)])
        progress = Progress("rebuild (messages of both streams)", total)
        started = time.perf_counter()
        projector = Projector(
            bus, store, node=NODE, batch_size=5000, high_water=50_000, separate_process=True
        )
        try:
            await projector.replay(progress.update)
        finally:
            await projector.stop()
        seconds = time.perf_counter() - started
        progress.finish()
        totals = projector.totals
        stats = store.stats()
        if totals.applied != n or totals.dead:
            raise RuntimeError(f"rebuild applied {totals} of {n:,} events")
        return seconds, {
            "messages": total,
            "applied": totals.applied,
            "duplicates": totals.duplicates,
            "memories": stats.get("memories"),
        }
    finally:
        store.close()


async def run(bus: Bus, scratch: Path, n: int) -> list[Figure]:
    say(f"rebuild: writing {n:,} memory events")
    await fill(bus, n)
    base_s = await _baseline(bus, n)
    say(f"rebuild: baseline read+decode {base_s:.2f}s")
    hive_s, notes = await _hivebrain(bus, scratch, n)
    say(f"rebuild: hivebrain {hive_s:.2f}s {notes}")
    return [
        Figure(
            metric=f"rebuild ({n:,} events, EVENTS+HIVE)",
            unit="events/s",
            hivebrain=n / hive_s,
            baseline=n / base_s,
            target=TARGET,
            reference_baseline=REFERENCE_BASELINE,
            higher_is_better=True,
            notes={"hivebrain_s": hive_s, "baseline_s": base_s, "n": n, **notes},
        )
    ]
