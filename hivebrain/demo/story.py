"""`hivebrain demo`: the story it prints on a `DemoHive`: writes everywhere converge, a
cut-off leaf keeps working, and after the link returns every node holds the same state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hivebrain.demo.hive import (
    DemoHive,
    applied,
    digest,
    memories,
    memory_count,
    settled,
    wait_until,
    write,
)
from hivebrain.node.node import Node

# -- helpers shared with the catch-up benchmark ---------------------------------------------


# -- the demo ---------------------------------------------------------------------------------


class DemoFailed(Exception):
    pass


@dataclass
class Story:
    """Prints each step with the time since the start."""

    say: Callable[[str], None]
    started: float = field(default_factory=time.perf_counter)

    def step(self, line: str) -> None:
        self.say(f"[{time.perf_counter() - self.started:5.1f}s] {line}")

    def detail(self, line: str) -> None:
        self.say(f"         {line}")


async def run_demo(
    root: Path,
    say: Callable[[str], None],
    *,
    first: int = 5,
    offline: int = 200,
    hold: float = 4.0,
    timeout: float = 20.0,
    nats_binary: str | None = None,
) -> dict[str, Any]:
    """Run the story (leaf1 stays cut off for at least `hold` seconds); returns the summary.
    Raises DemoFailed(message, summary) if the hive did not converge within `timeout` seconds
    of the link's return."""
    story = Story(say)
    hive = DemoHive(root, nats_binary=nats_binary)
    summary: dict[str, Any] = {"dir": str(root), "nodes": list(hive.names), "ok": False}
    hive.write_config()
    story.step(f"wrote {root / 'nodes.toml'} and a secret per node in {hive.creds_dir}")
    try:
        for leaf in hive.leaves:
            await hive.add_proxy(leaf)
        for name in hive.names:
            node = await hive.start_node(name)
            via = (
                f", linked via proxy 127.0.0.1:{hive.proxies[name].port}"
                if name in hive.proxies
                else ""
            )
            assert node.server is not None
            story.step(f"started {name} ({node.role.kind}) on {node.server.url}{via}")
        await _run_story(hive, story, summary, first, offline, hold, timeout)
    finally:
        await hive.stop()
        story.step("stopped every node and proxy")
    return summary


async def _run_story(
    hive: DemoHive,
    story: Story,
    summary: dict[str, Any],
    first: int,
    offline: int,
    hold: float,
    timeout: float,
) -> None:
    nodes = hive.nodes
    hub, cut_leaf = nodes[hive.hub], nodes[hive.leaves[0]]
    cut_name = hive.leaves[0]

    # 1. a few memories on each node, everywhere the same
    for name, node in nodes.items():
        await write(node, memories(name, first))
    total = first * len(nodes)
    story.step(f"wrote {first} memories on each node ({total} in all)")
    try:
        seconds = await settled(hive, total, timeout)
    except TimeoutError:
        raise DemoFailed(
            f"the hive did not converge within {timeout:g}s at the start", summary
        ) from None
    digests = {name: digest(node) for name, node in nodes.items()}
    story.step(f"converged in {seconds:.2f}s: every node applied {total} events")
    for name, value in digests.items():
        story.detail(f"digest {name}: {value}")
    summary["first"] = {"written": total, "seconds": round(seconds, 3), "digests": digests}

    # 2. cut one leaf off
    await hive.proxies[cut_name].cut()
    link = cut_leaf.link
    if link is not None:
        await wait_until(lambda: not link.linked, 10)
    cut_at = time.perf_counter()
    story.step(f"cut {cut_name} off the hub (its link watcher sees the hub gone)")

    # 3. writes on both sides; recall on the cut-off leaf all along
    other = hive.leaves[1] if len(hive.leaves) > 1 else hive.hub
    recall = Recall(cut_leaf, f"{other} memory number {first - 1}", tag=other)
    recall_task = asyncio.create_task(recall.loop())
    try:
        await asyncio.gather(
            write(cut_leaf, memories(f"{cut_name} offline", offline, tag=cut_name)),
            write(hub, memories(f"{hive.hub} meanwhile", offline, tag=hive.hub)),
        )
        story.step(
            f"wrote {offline} memories on {cut_name} and {offline} on {hive.hub} while cut off"
        )
        # each side applies its own writes (from its EVENTS) and nothing from the other side
        try:
            await wait_until(
                lambda: applied(cut_leaf) >= total + offline and applied(hub) >= total + offline,
                timeout,
            )
        except TimeoutError:
            raise DemoFailed(f"the writes were not applied within {timeout:g}s", summary) from None
        await asyncio.sleep(max(0.0, hold - (time.perf_counter() - cut_at)))  # a real outage
        if applied(cut_leaf) != total + offline or applied(hub) != total + offline:
            raise DemoFailed(f"{cut_name} was not cut off: writes crossed the cut link", summary)
    finally:
        recall.stop()
        await recall_task
    before = recall.first_hit
    assert cut_leaf.store is not None
    offline_query = f"{cut_name} offline memory number {offline - 1}"
    latest = cut_leaf.store.search_memories(offline_query, tags=[cut_name], limit=1)
    if before is None or not latest:
        raise DemoFailed(f"recall on {cut_name} found nothing while it was cut off", summary)
    story.step(
        f"recall on {cut_name} while cut off: {recall.count} searches, all answered "
        f"(slowest {recall.slowest * 1000:.1f} ms)"
    )
    story.detail(f"{recall.query!r} -> {before.text!r} (written on {before.node} before the cut)")
    story.detail(
        f"{offline_query!r} -> {latest[0].text!r} (written on {latest[0].node} while cut off)"
    )
    story.detail(
        f"{cut_name} holds {memory_count(cut_leaf)} memories, {hive.hub} {memory_count(hub)}: "
        "each side has only its own new writes"
    )
    summary["cut"] = {
        "leaf": cut_name,
        "written_each_side": offline,
        "recalls": recall.count,
        "recall_slowest_ms": round(recall.slowest * 1000, 2),
        "hit": before.text,
        "hit_offline": latest[0].text,
    }

    # 4. restore the link and time the convergence
    total += 2 * offline
    await hive.proxies[cut_name].restore()
    story.step(f"restored {cut_name}'s link after {time.perf_counter() - cut_at:.1f}s")
    try:
        seconds = await settled(hive, total, timeout)
    except TimeoutError:
        counts = {name: applied(node) for name, node in nodes.items()}
        summary["applied"] = counts
        raise DemoFailed(
            f"did not converge within {timeout:g}s of the link's return: applied {counts}, "
            f"expected {total} on every node",
            summary,
        ) from None
    digests = {name: digest(node) for name, node in nodes.items()}
    counts = {name: memory_count(node) for name, node in nodes.items()}
    story.step(f"converged {seconds:.2f}s after the link returned")
    for name in nodes:
        story.detail(f"digest {name}: {digests[name]}  memories: {counts[name]}")
    same = len(set(digests.values())) == 1 and len(set(counts.values())) == 1
    summary["after"] = {
        "written": total,
        "seconds": round(seconds, 3),
        "digests": digests,
        "memories": counts,
        "same": same,
    }
    if not same:
        raise DemoFailed("the nodes applied every event but hold different state", summary)
    summary["ok"] = True
    story.step(f"every node holds the same digest and {counts[hive.hub]} memories")


class Recall:
    """Searches a node's projection every 50 ms until stopped."""

    def __init__(self, node: Node, query: str, tag: str) -> None:
        self.node = node
        self.query = query
        self.tag = tag
        self.count = 0
        self.slowest = 0.0
        self.first_hit: Any = None
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def loop(self) -> None:
        store = self.node.store
        assert store is not None
        while not self._stop.is_set():
            started = time.perf_counter()
            hits = store.search_memories(self.query, tags=[self.tag], limit=1)
            self.slowest = max(self.slowest, time.perf_counter() - started)
            self.count += 1
            if hits and self.first_hit is None:
                self.first_hit = hits[0]
            await asyncio.sleep(0.05)
