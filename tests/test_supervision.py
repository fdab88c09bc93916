"""A node keeps its nats-server running, and a hub follows nodes.toml: a node added there
links (with its own credentials) and joins without a hub restart."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from hive import Writer, applied, memories, wait_until
from local import local_settings

from hivebrain.config import Settings
from hivebrain.demo.hive import homelab_toml
from hivebrain.node.credentials import generate_credentials
from hivebrain.node.homelab import load_homelab
from hivebrain.node.node import Node
from hivebrain.node.plan import HomelabWatcher, plan
from hivebrain.transport.server import free_port


def settings_for(root: Path, name: str) -> Settings:
    return local_settings(root / name, name)


async def test_a_crashed_nats_server_is_started_again(tmp_path: Path) -> None:
    settings = local_settings(tmp_path / "home")
    node = Node(settings)
    await node.start()
    try:
        await Writer(node).write(memories("before", 10))
        await wait_until(lambda: applied(node) == 10, 10)
        assert node.server is not None and node.server.pid is not None
        os.kill(node.server.pid, signal.SIGKILL)  # a crash, not a stop
        await wait_until(lambda: node.server_restarts == 1, 10)
        await wait_until(lambda: node.server is not None and node.server.running, 20)
        await Writer(node).write(memories("after", 10))  # retried until the server is back
        await wait_until(lambda: applied(node) == 20, 30)
    finally:
        await node.stop()


async def test_a_node_added_to_nodes_toml_joins_without_a_hub_restart(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("hub", "leaf1", "leaf2")}
    leaf_port = free_port()
    config_path = tmp_path / "nodes.toml"
    creds = tmp_path / "creds"
    config_path.write_text(homelab_toml("hub", ["leaf1"], ports, leaf_port))
    generate_credentials(creds, ["hub", "leaf1"])

    def start(name: str) -> Node:
        lab = load_homelab(config_path)
        node_settings, role, server = plan(settings_for(tmp_path, name), lab, name, creds)
        return Node(node_settings, role=role, server=server)

    hub, leaf1 = start("hub"), start("leaf1")
    await hub.start()
    watcher = HomelabWatcher(hub, config_path, creds)
    await leaf1.start()
    leaf2: Node | None = None
    try:
        await Writer(hub).write(memories("history", 100))
        await wait_until(lambda: applied(leaf1) == 100, 30)

        # The homelab grows: leaf2 in nodes.toml, with its own secret. The hub reloads.
        config_path.write_text(homelab_toml("hub", ["leaf1", "leaf2"], ports, leaf_port))
        generate_credentials(creds, ["hub", "leaf1", "leaf2"])
        assert await watcher.check()
        assert hub.server is not None and hub.server.running and hub.server_restarts == 0

        leaf2 = start("leaf2")
        await leaf2.start()
        await Writer(leaf2).write(memories("newcomer", 20))
        nodes = (hub, leaf1, leaf2)
        await wait_until(lambda: all(applied(n) == 120 for n in nodes), 30)
        assert hub.join is not None and "leaf2" in hub.join.sourced
        assert leaf2.store is not None
        assert leaf2.store.search_memories("history memory number 99", limit=1)
        digests = {n.store.digest() for n in (hub, leaf1, leaf2) if n.store is not None}
        assert len(digests) == 1
    finally:
        for node in (leaf2, leaf1, hub):
            if node is not None:
                await node.stop()
        await asyncio.sleep(0)
