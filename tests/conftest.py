"""Shared fixtures: a real nats-server (from the wheel) on a free port with a temporary store,
chained server -> bus (connected client); and an in-process node "n1" with its own server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from local import local_settings

from hivebrain.node.node import Node
from hivebrain.transport.bus import Bus, connect
from hivebrain.transport.server import NatsServer, ServerConfig, free_port


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    server = NatsServer(ServerConfig(store_dir=tmp_path / "nats", port=free_port()))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    b = await connect(nats_server.url)
    await b.ensure_streams("n1")
    yield b
    await b.close()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    n = Node(local_settings(tmp_path / "home"))
    await n.start()
    yield n
    await n.stop()
