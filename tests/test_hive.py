"""A hub and two leaves, each a real nats-server: writes everywhere converge, a cut-off leaf
keeps answering recall, and catch-up after the link returns is exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hive import (
    Hive,
    Writer,
    applied,
    converged,
    hive_last,
    hive_streams_at,
    memories,
    wait_until,
)

from hivebrain.transport.server import free_port


@pytest.fixture
async def hive(tmp_path: Path) -> AsyncIterator[Hive]:
    h = Hive(tmp_path)
    await h.start()
    yield h
    await h.stop()


def digests(hive: Hive) -> dict[str, str]:
    return {name: node.store.digest() for name, node in hive.nodes.items() if node.store}


async def test_writes_on_every_node_converge(hive: Hive) -> None:
    written = []
    for name in ("hub", "leaf1", "leaf2"):
        written += await Writer(hive.nodes[name]).write(memories(name, 200))
    await converged(hive, 600, timeout=30)
    assert len(set(digests(hive).values())) == 1
    # HIVE has each event once, in the same order on every node (the leaves mirror the hub).
    await hive_streams_at(hive, 600, timeout=30)
    for node in hive.nodes.values():
        assert node.store is not None
        hits = node.store.search_memories("leaf2 memory number 7", tags=["leaf2"], limit=1)
        assert hits and hits[0].node == "leaf2"


async def test_partitioned_leaf_keeps_working_and_catches_up_exactly(hive: Hive) -> None:
    await Writer(hive.nodes["leaf1"]).write(memories("before", 50))
    await converged(hive, 50, timeout=30)

    await hive.proxies["leaf1"].cut()
    leaf1, hub = hive.nodes["leaf1"], hive.nodes["hub"]
    assert leaf1.link is not None
    await wait_until(lambda: not leaf1.link.linked if leaf1.link else False, 10)
    assert leaf1.store is not None
    store = leaf1.store
    answered: list[int] = []

    async def recall_throughout() -> None:
        # The cut-off leaf answers recall from its own projection all along.
        while True:
            hits = store.search_memories("before memory number 3", limit=1)
            assert hits and hits[0].text == "before memory number 3"
            answered.append(len(hits))
            await asyncio.sleep(0.05)

    recalls = asyncio.create_task(recall_throughout())
    leaf_writes = asyncio.create_task(Writer(leaf1).write(memories("offline", 10_000)))
    await Writer(hub).write(memories("hubside", 10_000))
    await leaf_writes
    await wait_until(lambda: applied(leaf1) == 10_050, 60)
    assert not recalls.done(), recalls  # an assertion inside it would have ended it
    recalls.cancel()
    assert len(answered) >= 10
    assert leaf1.store.search_memories("offline memory number 9999", limit=1)
    # leaf2 gets the hub's side, and none of leaf1's offline writes.
    await wait_until(lambda: applied(hive.nodes["leaf2"]) == 10_050, 60)

    await hive.proxies["leaf1"].restore()
    seconds = await converged(hive, 20_050, timeout=90)
    assert len(set(digests(hive).values())) == 1
    await hive_streams_at(hive, 20_050, timeout=60)  # each event once, on every node
    print(f"converged {seconds:.1f}s after the link returned")


async def _catching_up(hive: Hive, leaf: str, total: int) -> int:
    """Cut `leaf`, write `total - 50` events on it, restore the link, and return as soon as the
    hub's HIVE is part-way through catching up (its last sequence then)."""
    await Writer(hive.nodes[leaf]).write(memories("before", 50))
    await converged(hive, 50, timeout=30)
    await hive.proxies[leaf].cut()
    await Writer(hive.nodes[leaf]).write(memories("offline", total - 50))
    await hive.proxies[leaf].restore()
    hub = hive.nodes["hub"]
    seen = 50
    while seen <= 50:
        seen = await hive_last(hub)
        await asyncio.sleep(0.01)
    return seen


@pytest.mark.slow
async def test_hub_killed_mid_catch_up_then_restarted_is_exact(hive: Hive) -> None:
    total = 20_050
    at_kill = await _catching_up(hive, "leaf1", total)
    hub = hive.nodes["hub"]
    assert hub.server is not None
    hub.server.kill()  # SIGKILL: no clean shutdown of the JetStream store
    assert at_kill < total, "the hub must be killed before it has caught up"
    await hive.stop_node("hub")
    await hive.start_node("hub")
    await converged(hive, total, timeout=120)
    assert len(set(digests(hive).values())) == 1
    await hive_streams_at(hive, total, timeout=60)  # each event once, on every node


@pytest.mark.slow
async def test_leaf_server_restarted_mid_catch_up_is_exact(hive: Hive) -> None:
    total = 20_050
    at_kill = await _catching_up(hive, "leaf1", total)
    leaf1 = hive.nodes["leaf1"]
    assert leaf1.server is not None
    leaf1.server.kill()
    assert at_kill < total
    await hive.stop_node("leaf1")
    await hive.start_node("leaf1")
    await converged(hive, total, timeout=120)
    assert len(set(digests(hive).values())) == 1
    await hive_streams_at(hive, total, timeout=60)


async def test_a_new_node_joins_a_running_hive_and_gets_the_full_history(
    tmp_path: Path,
) -> None:
    hive = Hive(tmp_path, leaves=("leaf1", "leaf2"))
    hive.leaves = ("leaf1",)  # the hub is started knowing only leaf1
    await hive.start()
    try:
        hub = hive.nodes["hub"]
        await Writer(hub).write(memories("history", 300))
        await Writer(hive.nodes["leaf1"]).write(memories("leaf1", 100))
        await converged(hive, 400, timeout=30)
        hive.leaves = ("leaf1", "leaf2")
        hive.ports["leaf2"] = free_port()
        await hive.add_proxy("leaf2")
        leaf2 = await hive.start_node("leaf2")  # no hub restart
        await Writer(leaf2).write(memories("newcomer", 50))
        await converged(hive, 450, timeout=30)
        assert hub.join is not None and "leaf2" in hub.join.sourced
        assert len(set(digests(hive).values())) == 1
        assert leaf2.store is not None
        assert leaf2.store.search_memories("history memory number 299", limit=1)
    finally:
        await hive.stop()
