"""A hub and two leaves on 127.0.0.1, each a real nats-server with the config `hivebrain node run`
would render and an in-process Node, every leaf linked to the hub through a `LinkProxy` so
that one leaf can be cut off and reconnected; and the small reads and writes the demo and the
multi-node tests make on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

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
