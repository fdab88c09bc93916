"""A whole hive on one machine: a hub and two leaves on 127.0.0.1, each a real nats-server with
the config `hivebrain node run` would render and an in-process Node, every leaf linked to the
hub through a `LinkProxy` so that one leaf can be cut off and reconnected.

`DemoHive` builds it (nodes.toml on free ports, per-node credentials, rendered server configs);
`run_demo` walks through the story `hivebrain demo` prints: writes everywhere converge, a
cut-off leaf keeps working, and after the link returns every node holds the same state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hivebrain.config import Settings, load_settings
from hivebrain.demo.proxy import LinkProxy
from hivebrain.events import Event, Payload
from hivebrain.events.memory import MemoryStored
from hivebrain.events.subjects import HIVE_STREAM
from hivebrain.node.credentials import generate_credentials
from hivebrain.node.homelab import Homelab, load_homelab
from hivebrain.node.node import Node, NodeRole
from hivebrain.node.plan import plan
from hivebrain.transport.event_writer import EventWriter
from hivebrain.transport.server import RenderedServerConfig, free_port

HUB = "hub"
LEAVES = ("leaf1", "leaf2")


def homelab_toml(
    hub: str, leaves: Iterable[str], client_ports: dict[str, int], leaf_port: int
) -> str:
    """A nodes.toml for a hub and `leaves`, everything on 127.0.0.1."""
    lines = [
        "# A hive on loopback, written by `hivebrain demo`.",
        "[hub]",
        f'name = "{hub}"',
        f'client_url = "nats://127.0.0.1:{client_ports[hub]}"',
        f'leafnode_url = "nats-leaf://127.0.0.1:{leaf_port}"',
        "",
        "[[nodes]]",
        f'name = "{hub}"',
        'role = "hub"',
        'tier = "server"',
        'host = "127.0.0.1"',
        f"client_port = {client_ports[hub]}",
        f"leafnode_port = {leaf_port}",
    ]
    for leaf in leaves:
        lines += [
            "",
            "[[nodes]]",
            f'name = "{leaf}"',
            'role = "leaf"',
            'tier = "edge"',
            'host = "127.0.0.1"',
            f"client_port = {client_ports[leaf]}",
        ]
    return "\n".join(lines) + "\n"


def via_proxy(homelab: Homelab, proxy: LinkProxy) -> Homelab:
    """The homelab as one leaf sees it: the hub's leafnode URL is that leaf's proxy."""
    hub = homelab.hub.model_copy(update={"leafnode_url": proxy.url})
    return homelab.model_copy(update={"hub": hub})


@dataclass
class DemoHive:
    """A hub and leaves on loopback under `root`: `root/nodes.toml`, `root/creds/`, and one data
    directory per node. Leaves reach the hub's leafnode port only through `proxies[leaf]`."""

    root: Path
    hub: str = HUB
    leaves: tuple[str, ...] = LEAVES
    nats_binary: str | None = None
    nodes: dict[str, Node] = field(default_factory=dict)
    proxies: dict[str, LinkProxy] = field(default_factory=dict)
    homelab: Homelab | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.hub, *self.leaves)

    @property
    def creds_dir(self) -> Path:
        return self.root / "creds"

    def write_config(self) -> Path:
        """nodes.toml on free ports and a secret per node; returns the nodes.toml path."""
        self.root.mkdir(parents=True, exist_ok=True)
        ports = {name: free_port() for name in self.names}
        path = self.root / "nodes.toml"
        path.write_text(homelab_toml(self.hub, self.leaves, ports, free_port()))
        self.homelab = load_homelab(path)
        generate_credentials(self.creds_dir, self.names)
        return path

    def plan(self, name: str) -> tuple[Settings, NodeRole, RenderedServerConfig]:
        """What `hivebrain node run --node <name>` would run, but with each leaf's link going
        through its proxy and the hub not advertising its own leafnode address (so a leaf
        never bypasses the proxy)."""
        assert self.homelab is not None, "write_config() first"
        settings = load_settings(
            data_dir=str(self.root / name),
            node=name,
            nats_url=None,
            port=None,
            nats_binary=self.nats_binary,
            json_output=False,
            env={},
        )
        if name == self.hub:
            return plan(settings, self.homelab, name, self.creds_dir, no_advertise=True)
        lab = via_proxy(self.homelab, self.proxies[name])
        return plan(settings, lab, name, self.creds_dir)

    async def add_proxy(self, leaf: str) -> LinkProxy:
        assert self.homelab is not None, "write_config() first"
        proxy = LinkProxy(self.homelab.hub_node.leafnode_port)
        await proxy.start()
        self.proxies[leaf] = proxy
        return proxy

    async def start(self) -> None:
        if self.homelab is None:
            self.write_config()
        for leaf in self.leaves:
            if leaf not in self.proxies:
                await self.add_proxy(leaf)
        for name in self.names:
            await self.start_node(name)

    async def start_node(self, name: str) -> Node:
        settings, role, config = self.plan(name)
        node = Node(settings, role=role, server=config)
        await node.start()
        self.nodes[name] = node
        return node

    async def stop(self) -> None:
        """Stop every node (leaves first) and close the proxies; never raises."""
        for name in reversed(list(self.nodes)):
            node = self.nodes.pop(name)
            try:
                await node.stop()
            except Exception:  # keep stopping the others
                if node.server is not None:
                    node.server.kill()
        for proxy in self.proxies.values():
            await proxy.cut()

    async def __aenter__(self) -> DemoHive:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# -- helpers shared with the catch-up benchmark ---------------------------------------------


async def write(node: Node, payloads: list[Payload]) -> list[Event]:
    """Publish events authored on `node` through its own server; returns once all are acked."""
    assert node.bus is not None and node.clock is not None
    clock = node.clock
    publisher = await node.bus.publisher(ack_timeout=2.0, retries=30)
    try:
        writer = EventWriter(node.settings.node, clock, publisher)
        sent = [await writer.send(p) for p in payloads]
        await asyncio.gather(*(ack for _, ack in sent))
    finally:
        await publisher.close()
    return [event for event, _ in sent]


def memories(prefix: str, count: int, tag: str | None = None) -> list[Payload]:
    """`count` memories "<prefix> memory number <i>", tagged `tag` (default: the prefix)."""
    tags = (tag or prefix,)
    return [MemoryStored(text=f"{prefix} memory number {i}", tags=tags) for i in range(count)]


def applied(node: Node) -> int:
    assert node.store is not None
    count = node.store.stats()["applied"]
    assert isinstance(count, int)
    return count


def memory_count(node: Node) -> int:
    assert node.store is not None
    count = node.store.stats()["memories"]
    assert isinstance(count, int)
    return count


def digest(node: Node) -> str:
    assert node.store is not None
    return node.store.digest()


async def hive_last(node: Node) -> int:
    assert node.bus is not None
    return await node.bus.streams.last_seq(HIVE_STREAM)


async def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> float:
    """Seconds until `predicate()` held; TimeoutError after `timeout`."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"not reached in {timeout:g}s")
        await asyncio.sleep(step)
    return time.perf_counter() - started


async def settled(hive: DemoHive, total: int, timeout: float, step: float = 0.05) -> float:
    """Seconds until every node applied `total` events and HIVE's last sequence is `total` on
    every node (each event once, everywhere); TimeoutError after `timeout`."""
    started = time.perf_counter()
    while True:
        if all(applied(n) == total for n in hive.nodes.values()):
            lasts = [await hive_last(n) for n in hive.nodes.values()]
            if set(lasts) == {total}:
                return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"not settled in {timeout:g}s")
        await asyncio.sleep(step)


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
