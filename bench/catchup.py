"""Catch-up after a partition: a hub and two leaves on loopback (real nats-servers with the
configs `hivebrain node run` renders, in-process Nodes, each leaf linked through a TCP proxy).

leaf1 is cut off, N events are written on it while it is offline, then the link is restored.
Measured: seconds from the link's return until every node's projection has applied all events
and HIVE's last sequence is the same (= the number of events) on every node.

Two shorter gaps, each timed from the end of the gap until the same state:
- the hub's nats-server SIGKILLed while leaf1 writes N/20 events (the hub's node restarts it);
  timed from the server accepting clients again (and leaf1's writes done);
- a 2-second cut of leaf1's link with N/20 events written on leaf1 and on the hub during it;
  timed from the link's return.

Baseline: the same run with the leaves' hello turned off (their LinkWatcher stopped right after
start), so only nats-server's own source/mirror retry brings the events over.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from hivebrain.demo.hive import DemoHive, hive_last, memories, wait_until, write
from hivebrain.node.node import Node

from .common import Figure, Progress, say

TARGET_S = 60.0  # goal: 10 s
GAP_TARGET_S = 10.0  # after a short gap or a server restart: "at once"
GAP_S = 2.0
BEFORE = 50  # events written (and replicated) before the cut
MIN_CUT_S = 5.0  # the link stays down at least this long (longer than the hello's silence)
CHUNK = 10_000


def _applied(node: Node) -> int:
    assert node.store is not None
    row = node.store.connection.execute("SELECT count(*) FROM applied").fetchone()
    return int(row[0])


async def _write(node: Node, n: int, label: str) -> None:
    progress = Progress(label, n)
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        await write(node, memories(f"offline {start}", count, tag="offline"))
        progress.update(count)
    progress.finish()


async def _settle(hive: DemoHive, total: int, timeout: float) -> dict[str, float]:
    """Seconds (from now) until each node applied `total` and until HIVE's last sequence was
    `total` on every node; raises TimeoutError with what was reached."""
    started = time.perf_counter()
    reached: dict[str, float] = {}
    while True:
        now = time.perf_counter() - started
        for name, node in hive.nodes.items():
            if f"applied {name}" not in reached and _applied(node) == total:
                reached[f"applied {name}"] = now
        if "hive" not in reached:
            lasts = [await hive_last(node) for node in hive.nodes.values()]
            if set(lasts) == {total}:
                reached["hive"] = now
        if len(reached) == len(hive.nodes) + 1:
            reached["all"] = max(reached.values())
            return reached
        if now > timeout:
            raise TimeoutError(f"after {timeout:g}s: {reached}")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _hive(root: Path, *, hello: bool) -> AsyncIterator[DemoHive]:
    """A hub and two leaves (with or without the leaves' hello) that hold BEFORE events."""
    async with DemoHive(root) as hive:
        if not hello:
            for leaf in hive.leaves:
                link = hive.nodes[leaf].link
                if link is not None:
                    await link.stop()
        await write(hive.nodes["leaf1"], memories("before", BEFORE))
        await _settle(hive, BEFORE, 30)
        yield hive


def _restarts(hive: DemoHive) -> tuple[int, int]:
    """(the hub's source restarts, the leaves' mirror restarts) so far."""
    join = hive.nodes["hub"].join
    links = [hive.nodes[leaf].link for leaf in hive.leaves]
    mirrors = sum(link.mirror_restarts for link in links if link is not None)
    return (join.restarts if join is not None else 0), mirrors


async def _caught_up(
    hive: DemoHive, label: str, total: int, timeout: float, before: tuple[int, int]
) -> dict[str, Any]:
    """Wait for every node to hold `total` events; the figures of one run (restarts counted
    from `before`, taken when the gap began)."""
    try:
        reached = await _settle(hive, total, timeout)
    except TimeoutError as exc:
        say(f"catchup {label}: not caught up {exc}")
        return {"seconds": float("inf"), "timed_out": timeout}
    sources, mirrors = (now - then for now, then in zip(_restarts(hive), before, strict=True))
    say(f"catchup {label}: {reached['all']:.1f}s ({_fmt(reached)})")
    return {
        "seconds": reached["all"],
        "reached": {k: round(v, 2) for k, v in reached.items()},
        "hub_source_restarts": sources,
        "mirror_restarts": mirrors,
    }


async def _one(root: Path, n: int, *, hello: bool, timeout: float) -> dict[str, Any]:
    label = "hivebrain" if hello else "baseline (no hello)"
    async with _hive(root, hello=hello) as hive:
        leaf1 = hive.nodes["leaf1"]
        before = _restarts(hive)
        await hive.proxies["leaf1"].cut()
        cut_at = time.perf_counter()
        await _write(leaf1, n, f"catchup {label}: writing on the cut-off leaf1")
        total = BEFORE + n
        await wait_until(lambda: _applied(leaf1) >= total, 120, step=0.1)  # its own, offline
        await asyncio.sleep(max(0.0, MIN_CUT_S - (time.perf_counter() - cut_at)))
        down = time.perf_counter() - cut_at
        await hive.proxies["leaf1"].restore()
        say(f"catchup {label}: link restored after {down:.1f}s; waiting for every node")
        return {**await _caught_up(hive, label, total, timeout, before), "cut_s": round(down, 1)}


async def _hub_killed(root: Path, n: int, *, hello: bool, timeout: float) -> dict[str, Any]:
    """SIGKILL the hub's nats-server while leaf1 writes `n` events; timed from the moment the
    server (restarted by the hub's node) accepts clients and the writes are done."""
    label = f"hub SIGKILL {'hivebrain' if hello else 'baseline (no hello)'}"
    async with _hive(root, hello=hello) as hive:
        hub, leaf1 = hive.nodes["hub"], hive.nodes["leaf1"]
        assert hub.server is not None and hub.server.pid is not None
        before = _restarts(hive)
        killed_at = time.perf_counter()
        os.kill(hub.server.pid, signal.SIGKILL)
        await write(leaf1, memories("while the hub restarts", n, tag="restart"))
        await wait_until(lambda: hub.server_restarts == 1, 20, step=0.05)
        await wait_until(lambda: hub.server is not None and hub.server.running, 30, step=0.05)
        down = time.perf_counter() - killed_at
        say(f"catchup {label}: hub's server back after {down:.1f}s; waiting for every node")
        caught = await _caught_up(hive, label, BEFORE + n, timeout, before)
        return {**caught, "down_s": round(down, 1)}


async def _link_gap(root: Path, n: int, *, hello: bool, timeout: float) -> dict[str, Any]:
    """Cut leaf1's link for GAP_S seconds while `n` events are written on leaf1 and on the hub;
    timed from the link's return."""
    label = f"{GAP_S:g} s gap {'hivebrain' if hello else 'baseline (no hello)'}"
    async with _hive(root, hello=hello) as hive:
        hub, leaf1 = hive.nodes["hub"], hive.nodes["leaf1"]
        before = _restarts(hive)
        await hive.proxies["leaf1"].cut()
        cut_at = time.perf_counter()
        await asyncio.gather(
            write(leaf1, memories("leaf1 in the gap", n, tag="gap")),
            write(hub, memories("hub in the gap", n, tag="gap")),
        )
        await asyncio.sleep(max(0.0, GAP_S - (time.perf_counter() - cut_at)))
        down = time.perf_counter() - cut_at
        await hive.proxies["leaf1"].restore()
        caught = await _caught_up(hive, label, BEFORE + 2 * n, timeout, before)
        return {**caught, "cut_s": round(down, 1)}


Scenario = Callable[..., Awaitable[dict[str, Any]]]


async def _pair(scratch: Path, scenario: Scenario, n: int, timeout: float) -> list[dict[str, Any]]:
    name = scenario.__name__.strip("_")
    ours = await scenario(scratch / f"{name}-hello", n, hello=True, timeout=timeout)
    raw = await scenario(scratch / f"{name}-raw", n, hello=False, timeout=timeout)
    return [ours, raw]


def _fmt(reached: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in reached.items() if k != "all")


async def run(scratch: Path, n: int, baseline_timeout: float = 150.0) -> list[Figure]:
    ours = await _one(scratch / "hello", n, hello=True, timeout=max(TARGET_S, baseline_timeout))
    raw = await _one(scratch / "raw", n, hello=False, timeout=baseline_timeout)
    small = max(100, n // 20)
    gap_timeout = 60.0  # nats-server's own retry: 30 s request timeout + 10 s back-off
    killed = await _pair(scratch, _hub_killed, small, gap_timeout)
    gap = await _pair(scratch, _link_gap, small, gap_timeout)
    return [
        Figure(
            metric=f"catch-up after a cut ({n:,} events written on the cut-off leaf)",
            unit="s",
            hivebrain=ours["seconds"],
            baseline=raw["seconds"],
            target=TARGET_S,
            higher_is_better=False,
            notes={"events": n, "hivebrain": ours, "baseline_without_hello": raw},
        ),
        Figure(
            metric=f"catch-up after a hub nats-server SIGKILL ({small:,} events written on a leaf)",
            unit="s",
            hivebrain=killed[0]["seconds"],
            baseline=killed[1]["seconds"],
            target=GAP_TARGET_S,
            higher_is_better=False,
            notes={"events": small, "hivebrain": killed[0], "baseline_without_hello": killed[1]},
        ),
        Figure(
            metric=f"catch-up after a {GAP_S:g} s link gap ({small:,} events written on each side)",
            unit="s",
            hivebrain=gap[0]["seconds"],
            baseline=gap[1]["seconds"],
            target=GAP_TARGET_S,
            higher_is_better=False,
            notes={"events": 2 * small, "hivebrain": gap[0], "baseline_without_hello": gap[1]},
        ),
    ]
