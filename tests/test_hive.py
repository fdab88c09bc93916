"""A hub and two leaves, each a real nats-server: writes everywhere converge, a cut-off leaf
keeps answering recall, and catch-up after the link returns is exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hive import Hive, Writer, applied, converged, hive_last, memories, wait_until


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
    assert {await hive_last(n) for n in hive.nodes.values()} == {600}
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
    leaf_writes = asyncio.create_task(Writer(leaf1).write(memories("offline", 10_000)))
    await Writer(hub).write(memories("hubside", 10_000))
    # The cut-off leaf answers recall from its own projection while it writes.
    assert leaf1.store is not None
    assert leaf1.store.search_memories("before memory number 3", limit=1)
    await leaf_writes
    await wait_until(lambda: applied(leaf1) == 10_050, 60)
    assert leaf1.store.search_memories("offline memory number 9999", limit=1)
    assert applied(hive.nodes["leaf2"]) == 10_050  # the hub's side, not leaf1's

    await hive.proxies["leaf1"].restore()
    seconds = await converged(hive, 20_050, timeout=90)
    assert len(set(digests(hive).values())) == 1
    assert {await hive_last(n) for n in hive.nodes.values()} == {20_050}
    print(f"converged {seconds:.1f}s after the link returned")
