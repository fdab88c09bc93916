"""Shared fixtures: a real nats-server (from the wheel) on a free port with a temporary store,
chained server -> bus (connected client)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hivebrain.bus import Bus, connect
from hivebrain.natsserver import NatsServer, ServerConfig, free_port


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
