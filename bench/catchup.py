"""Catch-up after a partition: a hub and two leaves on loopback (real nats-servers with the
configs `hivebrain node run` renders, in-process Nodes, each leaf linked through a TCP proxy).

leaf1 is cut off, N events are written on it while it is offline, then the link is restored.
Measured: seconds from the link's return until every node's projection has applied all events
and HIVE's last sequence is the same (= the number of events) on every node.

Baseline: the same run with the leaves' hello turned off (their LinkWatcher stopped right after
start), so only nats-server's own source/mirror retry brings the events over.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from hivebrain.demo.hive import DemoHive, hive_last, memories, wait_until, write
from hivebrain.node.node import Node

from .common import Figure, Progress, say

TARGET_S = 60.0  # goal: 10 s
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


async def _one(root: Path, n: int, *, hello: bool, timeout: float) -> dict[str, Any]:
    label = "hivebrain" if hello else "baseline (no hello)"
    async with DemoHive(root) as hive:
        leaf1 = hive.nodes["leaf1"]
        if not hello:
            for leaf in hive.leaves:
                link = hive.nodes[leaf].link
                if link is not None:
                    await link.stop()
        await write(leaf1, memories("before", BEFORE))
        await _settle(hive, BEFORE, 30)
        await hive.proxies["leaf1"].cut()
        cut_at = time.perf_counter()
        await _write(leaf1, n, f"catchup {label}: writing on the cut-off leaf1")
        total = BEFORE + n
        await wait_until(lambda: _applied(leaf1) >= total, 120, step=0.1)  # its own, offline
        await asyncio.sleep(max(0.0, MIN_CUT_S - (time.perf_counter() - cut_at)))
        down = time.perf_counter() - cut_at
        await hive.proxies["leaf1"].restore()
        say(f"catchup {label}: link restored after {down:.1f}s; waiting for every node")
        try:
            reached = await _settle(hive, total, timeout)
        except TimeoutError as exc:
            say(f"catchup {label}: not caught up {exc}")
            return {"seconds": float("inf"), "timed_out": timeout, "cut_s": round(down, 1)}
        hub = hive.nodes["hub"]
        restarts = hub.join.restarts if hub.join is not None else 0
        say(f"catchup {label}: {reached['all']:.1f}s ({_fmt(reached)})")
        return {
            "seconds": reached["all"],
            "reached": {k: round(v, 2) for k, v in reached.items()},
            "cut_s": round(down, 1),
            "hub_source_restarts": restarts,
        }


def _fmt(reached: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in reached.items() if k != "all")


async def run(scratch: Path, n: int, baseline_timeout: float = 150.0) -> list[Figure]:
    ours = await _one(scratch / "hello", n, hello=True, timeout=max(TARGET_S, baseline_timeout))
    raw = await _one(scratch / "raw", n, hello=False, timeout=baseline_timeout)
    return [
        Figure(
            metric=f"catch-up after a cut ({n:,} events written on the cut-off leaf)",
            unit="s",
            hivebrain=ours["seconds"],
            baseline=raw["seconds"],
            target=TARGET_S,
            higher_is_better=False,
            notes={"events": n, "hivebrain": ours, "baseline_without_hello": raw},
        )
    ]
