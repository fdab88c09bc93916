"""A node killed with SIGKILL in the middle of an ingest, then restarted: every acknowledged
event is in the projection exactly once.

Real processes throughout: `hivebrain up` as a subprocess (its nats-server gets SIGTERM through
PR_SET_PDEATHSIG when it dies), a publisher in the test process, the node's SQLite file read
directly to see how far it got before it was killed.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from local import local_settings
from nodeproc import Cli, NodeProcess, positions, wait_until

from hivebrain.config import Settings
from hivebrain.events import Event
from hivebrain.events.memory import MemoryReinforced, MemoryStored
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM
from hivebrain.node.node import server_config
from hivebrain.projections.store import ProjectionStore
from hivebrain.transport.bus import Bus, connect
from hivebrain.transport.publisher import Ack
from hivebrain.transport.server import NatsServer, free_port

pytestmark = pytest.mark.slow

MEMORIES = 5_000
REINFORCEMENTS = 20_000
TOTAL = MEMORIES + REINFORCEMENTS


def workload(seed: int) -> list[Event]:
    """5,000 memories, then 20,000 reinforcements of amount 1.0 spread over them."""
    rnd = random.Random(seed)
    stored = [
        Event.new(MemoryStored(text=f"crash memory {i}"), node="n1", lamport=i + 1)
        for i in range(MEMORIES)
    ]
    reinforced = [
        Event.new(
            MemoryReinforced(amount=1.0),
            node="n1",
            lamport=MEMORIES + i + 1,
            entity=rnd.choice(stored).entity,
        )
        for i in range(REINFORCEMENTS)
    ]
    return stored + reinforced


def settings_for(home: Path, port: int) -> Settings:
    return local_settings(home, port=port)


async def publish_all(bus: Bus, events: list[Event], sent: list[int]) -> list[Ack]:
    """Publish every event and wait for every ack; `sent[0]` counts the events handed over."""
    publisher = await bus.publisher(ack_timeout=1.0, retries=60)
    try:
        futures = []
        for event in events:
            futures.append(await publisher.publish(event))
            sent[0] += 1
            if sent[0] % 200 == 0:
                await asyncio.sleep(0)  # let the test's watcher run
        return list(await asyncio.gather(*futures))
    finally:
        await publisher.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    # Without the device registry and the embedder: the stream then holds exactly the test's
    # events.
    process = NodeProcess(Cli(tmp_path / "home", free_port()), "--no-devices", "--embedder", "none")
    yield process
    process.close()


def kill_and_restart(node: NodeProcess) -> dict[str, int]:
    """SIGKILL the node; return its committed positions at death; start it again."""
    node.kill()
    at_death = positions(node.db)
    node.wait_released()
    node.start()
    return at_death


def wait_applied(node: NodeProcess, last_seq: int) -> None:
    wait_until(
        lambda: positions(node.db) == {EVENTS_STREAM: last_seq, HIVE_STREAM: last_seq},
        f"the restarted node to apply both streams up to #{last_seq}",
        timeout=60,
    )


def check_projection(db: Path, events: list[Event], acks: list[Ack], reference: Path) -> None:
    """Every acknowledged event is applied exactly once, and nothing else is."""
    assert len(acks) == len(events) == TOTAL
    assert sorted(a.seq for a in acks) == list(range(1, TOTAL + 1))  # each stored once
    strength = Counter(e.entity for e in events if isinstance(e.payload, MemoryReinforced))
    conn = sqlite3.connect(db)
    try:
        applied = dict(conn.execute("SELECT type, count(*) FROM applied GROUP BY type"))
        rows = dict(conn.execute("SELECT id, strength FROM memories"))
    finally:
        conn.close()
    assert applied == {"memory.stored": MEMORIES, "memory.reinforced": REINFORCEMENTS}
    assert len(rows) == MEMORIES
    # Strength is a sum in milli-units: a reinforcement applied twice (or lost) shows here.
    wrong = {m: (s, 1000 * strength[m]) for m, s in rows.items() if s != 1000 * strength[m]}
    assert not wrong, (
        f"{len(wrong)} memories with a wrong strength, e.g. {next(iter(wrong.items()))}"
    )
    assert sum(rows.values()) == 1000 * REINFORCEMENTS

    with ProjectionStore(reference) as fresh:
        assert fresh.apply_events(events) == TOTAL
        expected = fresh.digest()
    with ProjectionStore(db) as store:
        assert store.digest() == expected
        assert store.stats()["dead_letters"] == 0


async def test_sigkill_while_catching_up(node: NodeProcess, tmp_path: Path) -> None:
    """Everything is acknowledged first (node stopped); the node is killed while applying it."""
    events = workload(seed=1)
    server = NatsServer(server_config(settings_for(node.cli.home, node.cli.port)))
    await server.start()
    try:
        bus = await connect(server.url)
        await bus.ensure_streams("n1")
        acks = await publish_all(bus, events, [0])
        await bus.close()
    finally:
        await server.stop()

    node.start()
    wait_until(
        lambda: MEMORIES < positions(node.db).get(EVENTS_STREAM, 0) < TOTAL,
        "the node to be partway through the reinforcements",
    )
    at_death = await asyncio.to_thread(kill_and_restart, node)
    assert 0 < sum(at_death.values()) < 2 * TOTAL, f"not killed mid-ingest: {at_death}"

    await asyncio.to_thread(wait_applied, node, TOTAL)
    check_projection(node.db, events, acks, tmp_path / "reference.db")


async def test_sigkill_while_publishing(node: NodeProcess, tmp_path: Path) -> None:
    """The node dies while events are being published and applied; the publisher keeps
    retrying with the same message ids until the restarted node acknowledges every event."""
    events = workload(seed=2)
    node.start()
    bus = await connect(f"nats://127.0.0.1:{node.cli.port}")
    sent = [0]
    publishing = asyncio.create_task(publish_all(bus, events, sent))
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not (sent[0] >= TOTAL // 3 and positions(node.db).get(EVENTS_STREAM, 0) > 0):
            assert not publishing.done(), "publishing ended before the node could be killed"
            assert asyncio.get_running_loop().time() < deadline, "the node applied nothing"
            await asyncio.sleep(0.005)
        sent_at_kill = sent[0]
        at_death = await asyncio.to_thread(kill_and_restart, node)
        assert sent_at_kill < TOTAL, "killed after everything was sent"
        assert 0 < at_death.get(EVENTS_STREAM, 0) < TOTAL, f"not killed mid-ingest: {at_death}"

        acks = await asyncio.wait_for(publishing, 90)
    finally:
        if not publishing.done():
            publishing.cancel()
        await bus.close()
    await asyncio.to_thread(wait_applied, node, TOTAL)
    check_projection(node.db, events, acks, tmp_path / "reference.db")
