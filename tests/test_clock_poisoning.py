"""One far-ahead stamp can never stop a node: an event stamped more than `max_clock_jump` above
a node's clock is dead-lettered (the clock stays where it was, local writes go on), and a clock
that such an event already pushed to the end of the range recovers when the node starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgpack
import nats
import pytest
from hive import Hive, Writer, memories, wait_until
from local import local_settings

from hivebrain.errors import InvalidEvent
from hivebrain.events import Event, to_wire
from hivebrain.events.envelope import MAX_LAMPORT
from hivebrain.events.memory import MemoryStored
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM, subject
from hivebrain.node.node import Node
from hivebrain.projections.clock_store import read_high


def poison(node: str, text: str = "stamped at the end of time") -> Event:
    return Event.new(MemoryStored(text=text), node=node, lamport=MAX_LAMPORT)


def clock(node: Node) -> int:
    assert node.store is not None
    return read_high(node.store.connection)


def count(node: Node) -> int:
    assert node.store is not None
    return int(node.store.stats()["memories"])  # type: ignore[arg-type]


def poisoned_letters(node: Node, event: Event) -> list[str]:
    assert node.store is not None
    wire = msgpack.packb(to_wire(event))
    return [d.reason for d in node.store.dead_letters(100) if d.data == wire]


async def test_a_hostile_stamp_published_on_a_leaf_stops_no_node(tmp_path: Path) -> None:
    hive = Hive(tmp_path, leaves=("leaf1",))
    await hive.start()
    try:
        hub, leaf = hive.nodes["hub"], hive.nodes["leaf1"]
        await Writer(leaf).write(memories("before", 3))
        await wait_until(lambda: hub.store is not None and hub.store.stats()["memories"] == 3, 20)
        # Anyone who may publish under hive.leaf1.> (the leaf, or whoever holds its secret),
        # straight through nats-py with the hivebrain headers, like any client could.
        bad = poison("leaf1")
        nc = await nats.connect(f"nats://127.0.0.1:{hive.ports['leaf1']}")
        try:
            ack = await nc.jetstream().publish(
                subject(bad), msgpack.packb(to_wire(bad)), headers={"Nats-Msg-Id": bad.event_id}
            )
        finally:
            await nc.close()
        assert leaf.projector is not None and hub.projector is not None
        assert await leaf.projector.wait_for(EVENTS_STREAM, ack.seq)
        await wait_until(lambda: bool(poisoned_letters(hub, bad)), 20)

        for node in (leaf, hub):
            [reason] = poisoned_letters(node, bad)  # once, though it came through two streams
            assert f"lamport {MAX_LAMPORT} is more than 1000000000 above this node's clock" in (
                reason
            )
            assert clock(node) < 10_000
            assert node.store is not None and node.store.memory(bad.entity) is None
        # Both keep writing, and each sees the other's writes.
        await Writer(leaf).write(memories("after-leaf", 2))
        await Writer(hub).write(memories("after-hub", 2))
        await wait_until(lambda: count(leaf) == count(hub) == 7, 20)
    finally:
        await hive.stop()


async def test_the_bound_is_the_nodes_setting(node: Node) -> None:
    """Within the bound a jump is an ordinary remote stamp: the clock follows it."""
    assert node.bus is not None and node.projector is not None
    ahead = Event.new(MemoryStored(text="from far ahead"), node="n1", lamport=900_000_000)
    ack = await node.bus.js.publish(subject(ahead), msgpack.packb(to_wire(ahead)))
    assert await node.projector.wait_for(HIVE_STREAM, ack.seq)
    assert node.store is not None and node.store.memory(ahead.entity) is not None
    assert clock(node) >= 900_000_000


async def test_a_poisoned_clock_recovers_when_the_node_starts(tmp_path: Path) -> None:
    settings = local_settings(tmp_path / "home")
    # As before the bound existed: the hostile stamp is applied and the clock jumps to it.
    unguarded = Node(settings.model_copy(update={"max_clock_jump": MAX_LAMPORT}))
    await unguarded.start()
    try:
        kept = await Writer(unguarded).write([MemoryStored(text="written before the poison")])
        assert unguarded.bus is not None and unguarded.projector is not None
        bad = poison("n1")
        ack = await unguarded.bus.js.publish(subject(bad), msgpack.packb(to_wire(bad)))
        assert await unguarded.projector.wait_for(HIVE_STREAM, ack.seq)
        assert await unguarded.projector.wait_for(EVENTS_STREAM, ack.seq)
        assert clock(unguarded) == MAX_LAMPORT
        with pytest.raises(InvalidEvent, match="lamport must be <= 2\\*\\*53"):
            await Writer(unguarded).write([MemoryStored(text="cannot be stamped")])
    finally:
        await unguarded.stop()

    node = Node(settings)  # the default bound
    await node.start()
    try:
        assert clock(node) < 10_000
        assert node.store is not None
        assert node.store.memory(bad.entity) is None
        assert node.store.memory(kept[0].entity) is not None
        assert poisoned_letters(node, bad)
        [written] = await Writer(node).write([MemoryStored(text="written after the recovery")])
        assert written.lamport < 10_000
        assert node.projector is not None and node.bus is not None
        assert await node.projector.wait_for(EVENTS_STREAM, await node.bus.last_seq(EVENTS_STREAM))
        assert node.store.memory(written.entity) is not None
    finally:
        await node.stop()
    await asyncio.sleep(0)
