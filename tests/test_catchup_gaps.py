"""Catch-up after a gap of any length: the hub's nats-server killed (and restarted by its node's
supervisor) while a leaf keeps writing, and a 2-second cut of one leaf's link with writes on
both sides. Real nats-servers with the configs `hivebrain node run` renders (a hub and two
leaves on loopback, each leaf linked through a TCP proxy).

Left to itself, nats-server resumes a source or mirror whose consumer-create request went out
while the link was down only after that request's 30 s timeout and a back-off (16-44 s here);
the hello's stall checks restart them at once. The bounds below are far under that wait.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hivebrain.demo.hive import DemoHive, applied, memories, settled, wait_until, write
from hivebrain.node.link import MAX_RESTART_GAP_S, MIN_RESTART_GAP_S, Pacer
from hivebrain.node.node import Node

CATCH_UP_S = 10.0  # well under nats-server's own 30 s + back-off
BEFORE = 50


@pytest.fixture
async def hive(tmp_path: Path) -> AsyncIterator[DemoHive]:
    async with DemoHive(tmp_path / "hive") as h:
        await write(h.nodes["leaf1"], memories("before", BEFORE))
        await settled(h, BEFORE, 30)
        yield h


def digests(hive: DemoHive) -> set[str]:
    return {node.store.digest() for node in hive.nodes.values() if node.store is not None}


async def keep_writing(node: Node, prefix: str, written: list[int], done: asyncio.Event) -> None:
    """Write batches of 20 on `node` until `done`; `written` gets one entry per acked batch."""
    while not done.is_set():
        await write(node, memories(f"{prefix} {len(written)}", 20, tag="during"))
        written.append(20)
        await asyncio.sleep(0.1)


async def test_hub_server_killed_while_a_leaf_writes_catches_up_at_once(hive: DemoHive) -> None:
    hub, leaf1 = hive.nodes["hub"], hive.nodes["leaf1"]
    assert hub.server is not None and hub.server.pid is not None
    written: list[int] = []
    done = asyncio.Event()
    writer = asyncio.create_task(keep_writing(leaf1, "leaf1 during", written, done))
    await wait_until(lambda: len(written) >= 3, 10)
    os.kill(hub.server.pid, signal.SIGKILL)  # a crash: the hub's node restarts its server
    await wait_until(lambda: hub.server_restarts == 1, 10)
    await wait_until(lambda: hub.server is not None and hub.server.running, 20)
    await asyncio.sleep(2.0)  # the leaf keeps writing after the hub's server is back
    done.set()
    await writer
    await write(hub, memories("hub after", 30, tag="after"))  # must reach the leaves' mirrors
    total = BEFORE + sum(written) + 30
    started = time.perf_counter()
    seconds = await settled(hive, total, CATCH_UP_S)
    assert seconds < CATCH_UP_S, seconds
    assert len(digests(hive)) == 1
    assert hub.store is not None
    assert hub.store.search_memories(f"leaf1 during {len(written) - 1} memory number 19", limit=1)
    print(f"caught up {time.perf_counter() - started:.1f}s after the last writes")


async def test_a_two_second_link_gap_with_writes_on_both_sides_catches_up_at_once(
    hive: DemoHive,
) -> None:
    hub, leaf1, leaf2 = hive.nodes["hub"], hive.nodes["leaf1"], hive.nodes["leaf2"]
    await hive.proxies["leaf1"].cut()
    cut_at = time.perf_counter()
    await write(leaf1, memories("leaf1 offline", 200, tag="offline"))
    await write(hub, memories("hub side", 200, tag="hubside"))
    await wait_until(lambda: applied(leaf2) == BEFORE + 200, 10)  # the hub's side moves on
    await asyncio.sleep(max(0.0, 2.0 - (time.perf_counter() - cut_at)))
    await hive.proxies["leaf1"].restore()
    total = BEFORE + 400
    seconds = await settled(hive, total, CATCH_UP_S)
    assert seconds < CATCH_UP_S, seconds
    assert len(digests(hive)) == 1
    assert leaf1.store is not None and hub.store is not None
    assert leaf1.store.search_memories("hub side memory number 199", limit=1)
    assert hub.store.search_memories("leaf1 offline memory number 199", limit=1)
    print(f"caught up {seconds:.1f}s after the link returned")


def test_restarts_of_a_source_that_stays_stalled_are_spaced_out() -> None:
    pacer = Pacer(confirm=0.9)
    assert not pacer.due(100.0)  # seen stalled once: maybe a resume still in flight
    assert pacer.due(101.0)
    restarts = []
    now = 101.0
    while now < 200.0:  # checked every second, stalled all along
        if pacer.due(now):
            pacer.restarted(now)
            restarts.append(now)
        now += 1.0
    gaps = [b - a for a, b in itertools.pairwise(restarts)]
    assert gaps[0] == MIN_RESTART_GAP_S and max(gaps) == MAX_RESTART_GAP_S
    assert gaps == sorted(gaps) and len(restarts) <= 8
    pacer.healthy()  # it moved: the next stall is restarted as soon as it is confirmed
    assert not pacer.due(300.0) and pacer.due(301.0)
    pacer.unlinked()  # the link dropped: confirmed afresh once it is back
    assert not pacer.due(302.0)
