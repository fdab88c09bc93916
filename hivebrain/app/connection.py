"""How a program reaches its node: the node's NATS (starting the embedded nats-server for the
length of one command when no node runs) and the brain over it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlparse

from hivebrain.app.brain import Brain
from hivebrain.config import Settings
from hivebrain.errors import NotConnected
from hivebrain.node.credentials import credentials_path, load_credentials
from hivebrain.node.lock import NodeLock
from hivebrain.node.node import server_config
from hivebrain.transport.bus import Bus, connect
from hivebrain.transport.server import NatsServer, RenderedServerConfig


def client_secret(settings: Settings) -> str | None:
    """The password of this node's NATS user when the node runs with credentials
    (`hivebrain node run`); None for the single-machine default."""
    directory = settings.data_dir / "creds"
    if not credentials_path(directory, settings.node).exists():
        return None
    return load_credentials(directory, settings.node).reveal()


def _rendered_server(settings: Settings, holding_lock: bool) -> NatsServer:
    rendered = settings.nats_dir / "nats-server.conf"
    node_running = not holding_lock and NodeLock.held(settings.lock_file)
    if node_running or not rendered.exists():
        raise NotConnected(
            f"cannot reach NATS at {settings.nats_url}: start this node first "
            f"(hivebrain node run --node {settings.node})"
        )
    url = urlparse(settings.nats_url)
    config = RenderedServerConfig(
        text=rendered.read_text(),
        store_dir=settings.nats_dir,
        host=url.hostname or "127.0.0.1",
        port=url.port or 4222,
    )
    return NatsServer(config, binary=settings.nats_binary)


@asynccontextmanager
async def reach_nats(settings: Settings, *, holding_lock: bool = False) -> AsyncIterator[Bus]:
    """A connected bus. With the embedded default and no node running, a nats-server is started
    on the node's store for the length of the command, so its streams can still be used.
    `holding_lock`: the caller holds the node lock itself (a rebuild), so no node runs."""
    server: NatsServer | None = None
    password = client_secret(settings)
    user = settings.node if password else None
    try:
        bus = await connect(settings.nats_url, timeout=2.0, user=user, password=password)
    except NotConnected:
        if password is not None:
            # A node of a homelab: its server runs with the accounts and users `node run`
            # rendered; only that config reaches the node's streams.
            server = _rendered_server(settings, holding_lock)
            await server.start()
            bus = await connect(server.url, user=user, password=password)
            try:
                yield bus
            finally:
                await bus.close()
                await server.stop()
            return
        node_running = not holding_lock and NodeLock.held(settings.lock_file)
        if not settings.embedded or node_running:
            raise NotConnected(
                f"cannot reach NATS at {settings.nats_url}: is the node up? (hivebrain up)"
            ) from None
        server = NatsServer(server_config(settings), binary=settings.nats_binary)
        await server.start()
        bus = await connect(server.url)
    try:
        if password is None:  # a homelab node's streams are its node's business
            await bus.ensure_streams(settings.node)
        yield bus
    finally:
        await bus.close()
        if server is not None:
            await server.stop()


@asynccontextmanager
async def open_brain(settings: Settings) -> AsyncIterator[Brain]:
    async with reach_nats(settings) as bus:
        publisher = await bus.publisher()
        brain = Brain(settings, bus, publisher)
        try:
            yield brain
        finally:
            await publisher.close()
            brain.store.close()
