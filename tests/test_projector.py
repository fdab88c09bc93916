"""The projector against a real node: the live projection equals a full replay of the streams,
equals the events applied to a fresh store, and the double delivery through EVENTS and HIVE is
counted as duplicates, never applied twice."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import types
from pathlib import Path

import psutil
import pytest

from hivebrain.errors import ProjectionError, WriterGone
from hivebrain.events import Event, Payload, VersionRef
from hivebrain.events.memory import (
    SPACES,
    MemoryDecayed,
    MemoryEdited,
    MemoryForgotten,
    MemoryMoved,
    MemoryReinforced,
    MemoryStored,
    TagRemoval,
)
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM
from hivebrain.node.node import Node
from hivebrain.node.projector import Projector
from hivebrain.node.writer import ProcessWriter
from hivebrain.projections.sqlite import BUSY_TIMEOUT_MS, connect
from hivebrain.projections.store import ProjectionStore


def mixed_events(seed: int, memories: int = 800) -> list[Event]:
    """Memories stored first, then edits (some on the same base: conflicts), tag removals, moves,
    tombstones, reinforcements and decays, in a shuffled order with increasing lamports."""
    rnd = random.Random(seed)
    lamport = 0

    def event(payload: Payload, entity: str | None = None) -> Event:
        nonlocal lamport
        lamport += 1
        return Event.new(payload, node="n1", lamport=lamport, entity=entity)

    stored = [
        event(
            MemoryStored(
                text=f"memory {i} about {rnd.choice(['cats', 'pumps', 'tides', 'gpus'])}",
                tags=tuple(rnd.sample(["a", "b", "c"], rnd.randint(0, 2))),
                space=rnd.choice(SPACES),
            )
        )
        for i in range(memories)
    ]
    later: list[tuple[Payload, str]] = []
    for _ in range(memories // 2):
        base = rnd.choice(stored)
        edit = MemoryEdited(
            base=VersionRef.of(base.stamp), text=f"edited {rnd.random()}", tag=("edited",)
        )
        later.append((edit, base.entity))
    for base in stored:
        tags = base.payload.tags if isinstance(base.payload, MemoryStored) else ()
        if tags and rnd.random() < 0.3:
            removal = TagRemoval(tag=tags[0], observed=(base.event_id,))
            later.append(
                (MemoryEdited(base=VersionRef.of(base.stamp), untag=(removal,)), base.entity)
            )
    for _ in range(300):
        later.append((MemoryMoved(space=rnd.choice(SPACES)), rnd.choice(stored).entity))
    for _ in range(150):
        later.append((MemoryForgotten(reason="test"), rnd.choice(stored).entity))
    for _ in range(1500):
        later.append(
            (MemoryReinforced(amount=rnd.choice([0.5, 1.0, 2.0])), rnd.choice(stored).entity)
        )
    for _ in range(200):
        later.append((MemoryDecayed(amount=0.25), rnd.choice(stored).entity))
    rnd.shuffle(later)
    return stored + [event(payload, entity) for payload, entity in later]


async def publish_all(node: Node, events: list[Event]) -> None:
    """Publish `events` through the node's bus and wait for every ack."""
    assert node.bus is not None
    publisher = await node.bus.publisher()
    for e in events:
        await publisher.publish(e)
    await publisher.flush()
    await publisher.close()


def keyword_hits(store: ProjectionStore) -> dict[tuple[str, bool], list[str]]:
    """The memories each keyword finds, live ones and forgotten ones included."""
    return {
        (word, forgotten): sorted(
            hit.id
            for hit in store.search_memories(
                word, limit=10_000, all_agents=True, include_forgotten=forgotten
            )
        )
        for word in ("cats", "pumps", "tides", "gpus", "edited")
        for forgotten in (False, True)
    }


async def test_live_projection_equals_replay_and_fresh_apply(node: Node, tmp_path: Path) -> None:
    assert node.bus is not None and node.store is not None and node.projector is not None
    events = mixed_events(seed=7)
    count = len(events)
    assert count > 3000
    publisher = await node.bus.publisher()
    futures = [await publisher.publish(e) for e in events]
    acks = await asyncio.gather(*futures)
    await publisher.close()
    last = count
    assert sorted(a.seq for a in acks) == list(range(1, last + 1))

    assert await node.projector.wait_for(EVENTS_STREAM, last, timeout=30)
    assert await node.projector.wait_for(HIVE_STREAM, last, timeout=30)
    live = node.store.digest()
    totals = node.projector.totals
    assert (totals.applied, totals.duplicates, totals.dead) == (count, count, 0)
    assert totals.max_lamport == events[-1].lamport
    stats = node.store.stats()
    assert stats["applied"] == count and stats["memories"] == 800
    assert node.store.conflicts(), "edits on one base must show up as conflicts"

    with ProjectionStore(tmp_path / "fresh.db") as fresh:
        assert fresh.apply_events(events) == count
        assert fresh.digest() == live
    searchable = keyword_hits(node.store)
    assert searchable[("edited", False)] and searchable[("cats", True)]

    # Throw the projection away and replay the streams with a fresh projector; small batches and
    # a low high-water mark make the subscriptions stall and resume many times.
    await node.projector.stop()
    node.store.reset()
    assert node.store.stats()["applied"] == 0 and node.store.digest() != live
    # The batches are applied in a process of their own, as `projections rebuild` does.
    replay = Projector(
        node.bus, node.store, node="n1", batch_size=100, high_water=300, separate_process=True
    )
    progress: list[int] = []
    await asyncio.wait_for(replay.replay(progress.append), 60)
    # Copies of the WAL along the way must not keep the final checkpoint from emptying it.
    assert node.store.path.with_name(node.store.path.name + "-wal").stat().st_size == 0
    await replay.stop()
    assert sum(progress) == 2 * count
    # Each event is read once: HIVE in full, and nothing of EVENTS, which HIVE has sourced.
    assert replay.own_sourced == last
    assert (replay.totals.applied, replay.totals.duplicates, replay.totals.dead) == (count, 0, 0)
    assert node.store.position(EVENTS_STREAM) == node.store.position(HIVE_STREAM) == last
    assert node.store.digest() == live
    # The replay indexes keywords once at its end: the same memories are found as live.
    assert keyword_hits(node.store) == searchable


async def test_projector_resumes_from_stored_positions(node: Node) -> None:
    """A second projector on the same store starts after the positions the first committed:
    it receives only what is new and applies it once."""
    assert node.bus is not None and node.store is not None and node.projector is not None
    events = mixed_events(seed=8, memories=50)
    publisher = await node.bus.publisher()
    first, second = events[:50], events[50:]
    for e in first:
        await publisher.publish(e)
    await publisher.flush()
    assert await node.projector.wait_for(HIVE_STREAM, len(first))
    assert await node.projector.wait_for(EVENTS_STREAM, len(first))
    await node.projector.stop()

    for e in second:
        await publisher.publish(e)
    await publisher.flush()
    await publisher.close()
    assert node.store.position(EVENTS_STREAM) == node.store.position(HIVE_STREAM) == len(first)
    resumed = Projector(node.bus, node.store)
    try:
        await resumed.start()  # live from here: its positions move as it applies
        await asyncio.wait_for(resumed.catch_up(), 30)
    finally:
        await resumed.stop()
    # Had it read the first messages again, they would count as duplicates here.
    assert resumed.totals.applied == resumed.totals.duplicates == len(second)
    assert node.store.stats()["applied"] == len(events)


async def test_replay_reads_the_events_tail_that_hive_has_not_sourced(node: Node) -> None:
    """When HIVE lags behind EVENTS (a source stopped, or not caught up), a replay applies
    HIVE, then exactly the EVENTS messages after the last one HIVE holds."""
    assert node.bus is not None and node.store is not None and node.projector is not None
    events = mixed_events(seed=9, memories=60)
    sourced, tail = events[:100], events[100:]
    publisher = await node.bus.publisher()
    for e in sourced:
        await publisher.publish(e)
    await publisher.flush()
    assert await node.projector.wait_for(HIVE_STREAM, len(sourced))
    live_first = node.store.digest()
    await node.projector.stop()
    hive = (await node.bus.js.stream_info(HIVE_STREAM)).config
    hive.sources = []
    await node.bus.js.update_stream(hive)  # HIVE stops sourcing: the tail stays in EVENTS only
    for e in tail:
        await publisher.publish(e)
    await publisher.flush()
    await publisher.close()
    assert await node.bus.last_seq(HIVE_STREAM) == len(sourced)
    assert await node.bus.last_seq(EVENTS_STREAM) == len(events)

    node.store.reset()
    replay = Projector(node.bus, node.store, node="n1")
    await asyncio.wait_for(replay.replay(), 60)
    await replay.stop()
    assert replay.own_sourced == len(sourced)
    assert (replay.totals.applied, replay.totals.duplicates) == (len(events), 0)
    assert node.store.position(EVENTS_STREAM) == len(events)
    assert node.store.position(HIVE_STREAM) == len(sourced)
    with ProjectionStore(node.settings.data_dir / "fresh.db") as fresh:
        fresh.apply_events(events)
        assert node.store.digest() == fresh.digest() != live_first


async def test_replay_stops_with_an_error_when_its_writer_process_dies(node: Node) -> None:
    """A replay whose writer process is killed after its first batch ends with WriterGone
    instead of waiting forever; what was committed stays, and a new replay completes it."""
    assert node.bus is not None and node.store is not None and node.projector is not None
    events = mixed_events(seed=10, memories=150)
    await publish_all(node, events)
    assert await node.projector.wait_for(HIVE_STREAM, len(events), timeout=30)
    live = node.store.digest()
    await node.projector.stop()
    node.store.reset()

    killed: list[int] = []

    def kill_writer(_result: object) -> None:
        # Once: the batch sent after the first one may still have committed before the kill.
        for child in psutil.Process().children():
            if not killed and "spawn_main" in " ".join(child.cmdline()):
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    replay = Projector(
        node.bus, node.store, node="n1", batch_size=50, separate_process=True, on_batch=kill_writer
    )
    with pytest.raises(WriterGone):
        await asyncio.wait_for(replay.replay(), 60)
    await replay.stop()
    applied = node.store.stats()["applied"]
    assert isinstance(applied, int) and 0 < applied < len(events)

    again = Projector(node.bus, node.store, node="n1", separate_process=True)
    await asyncio.wait_for(again.replay(), 60)
    await again.stop()
    assert node.store.digest() == live


async def test_a_failed_batch_holds_back_the_batch_sent_after_it(
    node: Node, tmp_path: Path
) -> None:
    """A writer process holds two batches at once. When the first fails (the database stays
    locked past the busy timeout) the second, already sent, must not commit positions past the
    first's messages: it is held back, both are retried, and every event is applied once."""
    assert node.bus is not None
    events = mixed_events(seed=11, memories=60)
    await publish_all(node, events)
    path = tmp_path / "locked.db"
    store = ProjectionStore(path)
    # HIVE alone: on both streams, a message lost from one would be applied from the other.
    # The stream is full before the projector starts: batches go out two at a time.
    projector = Projector(
        node.bus, store, node="n1", streams=(HIVE_STREAM,), batch_size=20, separate_process=True
    )
    blocker = connect(path)
    try:
        await projector.start()  # its writer process has the store open
        blocker.execute("BEGIN IMMEDIATE")  # taken between two of the first batches
        # The next batch fails after the 5 s busy timeout; the one after it then waits for
        # the lock, which is released before its own timeout: it gets the lock, out of turn.
        await asyncio.sleep(BUSY_TIMEOUT_MS / 1000 + 2)
        blocker.execute("ROLLBACK")
        assert await projector.wait_for(HIVE_STREAM, len(events), timeout=30)
    finally:
        blocker.close()
        await projector.stop()
    assert projector.held_back >= 1
    assert projector.totals.applied == len(events)
    assert store.stats()["applied"] == len(events)
    with ProjectionStore(tmp_path / "fresh.db") as fresh:
        fresh.apply_events(events)
        assert store.digest() == fresh.digest()
    store.close()


async def test_a_projector_that_stops_on_an_error_says_so(node: Node, tmp_path: Path) -> None:
    """An error in the apply loop itself (here the caller's on_batch) ends the waits with
    a ProjectionError instead of leaving them to time out."""
    assert node.bus is not None

    def broken(_result: object) -> None:
        raise RuntimeError("progress display broke")

    with ProjectionStore(tmp_path / "p.db") as store:
        projector = Projector(node.bus, store, node="n1", on_batch=broken)
        await projector.start()
        try:
            publisher = await node.bus.publisher()
            await publisher.publish_wait(mixed_events(seed=12, memories=5)[0])
            await publisher.close()
            with pytest.raises(ProjectionError, match="progress display broke"):
                await projector.wait_for(HIVE_STREAM, 1, timeout=30)
        finally:
            await projector.stop()


async def test_the_writer_process_starts_without_the_main_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `spawn` runs the parent's main module in a new process before anything else (for the
    # CLI, all of it); the writer's process must not: it would start a second or later.
    marker = tmp_path / "main-module-ran"
    script = tmp_path / "main_script.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    store = ProjectionStore(tmp_path / "p.db")
    writer = ProcessWriter(store.path, store.strategy, store.max_clock_jump)
    try:
        assert await writer.position(HIVE_STREAM) == 0
    finally:
        await writer.close()
        store.close()
    assert not marker.exists()
