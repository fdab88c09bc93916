"""A hive on loopback for tests: a hub and leaves, each a real nats-server with its own
JetStream domain and an in-process Node, the leaves linked to the hub through a TCP proxy that
can cut one link (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from local import local_settings

from hivebrain.actors import Actor
from hivebrain.demo.proxy import LinkProxy
from hivebrain.events import Event, Payload
from hivebrain.events.memory import MemoryStored
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM
from hivebrain.node.node import Node, NodeRole
from hivebrain.transport.server import ServerConfig, free_port


@dataclass
class Hive:
    root: Path
    leaves: tuple[str, ...] = ("leaf1", "leaf2")
    hub: str = "hub"
    nodes: dict[str, Node] = field(default_factory=dict)
    proxies: dict[str, LinkProxy] = field(default_factory=dict)
    actors: Callable[[str], Sequence[Actor]] | None = None  # node name -> its actors

    def __post_init__(self) -> None:
        self.ports = {n: free_port() for n in (self.hub, *self.leaves)}
        self.leaf_port = free_port()

    def _node(self, name: str) -> Node:
        settings = local_settings(self.root / name, name, self.ports[name])
        if name == self.hub:
            extra = [f"leafnodes {{ listen: 127.0.0.1:{self.leaf_port}, no_advertise: true }}"]
            role = NodeRole(kind="hub", leaves=self.leaves)
        else:
            url = f"nats-leaf://127.0.0.1:{self.proxies[name].port}"
            extra = [f'leafnodes {{ reconnect: "1s", remotes: [ {{ url: "{url}" }} ] }}']
            role = NodeRole(kind="leaf", hub=self.hub)
        server = ServerConfig(
            store_dir=settings.nats_dir,
            name=name,
            port=self.ports[name],
            domain=name,
            extra=extra,
        )
        actors = self.actors(name) if self.actors is not None else ()
        return Node(settings, role=role, server=server, actors=actors)

    async def add_proxy(self, leaf: str) -> None:
        self.proxies[leaf] = LinkProxy(self.leaf_port)
        await self.proxies[leaf].start()

    async def start(self) -> None:
        for leaf in self.leaves:
            await self.add_proxy(leaf)
        for name in (self.hub, *self.leaves):
            await self.start_node(name)

    async def start_node(self, name: str) -> Node:
        node = self._node(name)
        await node.start()
        self.nodes[name] = node
        return node

    async def stop_node(self, name: str) -> None:
        await self.nodes.pop(name).stop()

    async def stop(self) -> None:
        for name in list(self.nodes):
            await self.stop_node(name)
        for proxy in self.proxies.values():
            await proxy.cut()


class Writer:
    """Publishes events authored on one node through that node's own server."""

    def __init__(self, node: Node) -> None:
        assert node.bus is not None and node.clock is not None
        self.node = node

    async def write(
        self, payloads: list[Payload], entity: str | None = None, ts: float | None = None
    ) -> list[Event]:
        node = self.node
        assert node.bus is not None and node.clock is not None
        publisher = await node.bus.publisher(ack_timeout=2.0, retries=30)
        events = [
            Event.new(p, node=node.settings.node, lamport=node.clock.tick(), entity=entity, ts=ts)
            for p in payloads
        ]
        futures = [await publisher.publish(e) for e in events]
        await asyncio.gather(*futures)
        await publisher.close()
        return events


def memories(prefix: str, count: int) -> list[Payload]:
    return [MemoryStored(text=f"{prefix} memory number {i}", tags=(prefix,)) for i in range(count)]


async def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> float:
    """Seconds until `predicate()` held; raises TimeoutError after `timeout`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout:
            raise TimeoutError(f"not reached in {timeout}s")
        await asyncio.sleep(step)
    return loop.time() - start


def applied(node: Node) -> int:
    assert node.store is not None
    count = node.store.stats()["applied"]
    assert isinstance(count, int)
    return count


async def converged(hive: Hive, total: int, timeout: float) -> float:
    """Wait until every node applied `total` events; returns the seconds it took."""
    return await wait_until(lambda: all(applied(n) == total for n in hive.nodes.values()), timeout)


async def hive_last(node: Node) -> int:
    assert node.bus is not None
    return await node.bus.last_seq(HIVE_STREAM)


async def events_last(node: Node) -> int:
    assert node.bus is not None
    return await node.bus.last_seq(EVENTS_STREAM)


async def hive_streams_at(hive: Hive, total: int, timeout: float) -> None:
    """Wait until HIVE holds exactly `total` messages on every node (mirrors included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        lasts = {name: await hive_last(node) for name, node in hive.nodes.items()}
        if set(lasts.values()) == {total}:
            return
        if loop.time() > deadline or any(v > total for v in lasts.values()):
            raise AssertionError(f"HIVE last sequences {lasts}, expected {total} everywhere")
        await asyncio.sleep(0.1)
