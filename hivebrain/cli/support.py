"""What several commands share: running a coroutine, printing text or JSON, the settings,
reaching NATS (the embedded server for the length of one command when no node runs) and
opening the brain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast
from urllib.parse import urlparse

import click

from hivebrain.app.brain import Brain
from hivebrain.config import Settings
from hivebrain.errors import ConfigError, NotConnected
from hivebrain.node.credentials import credentials_path, load_credentials
from hivebrain.node.node import NodeLock, server_config
from hivebrain.transport.bus import Bus, connect
from hivebrain.transport.server import NatsServer, RenderedServerConfig

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def emit(settings: Settings, data: Any, text: Callable[[Any], str] | str) -> None:
    """Print `data` as JSON with --json, else the human text."""
    if settings.json_output:
        click.echo(json.dumps(data, indent=None, default=str))
    else:
        click.echo(text(data) if callable(text) else text)


_pass_settings = click.make_pass_decorator(Settings)
F = TypeVar("F", bound=Callable[..., Any])


def _json_flag(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        settings = ctx.find_object(Settings)
        if settings is not None:
            ctx.obj = settings.model_copy(update={"json_output": True})


def pass_settings(f: F) -> F:
    """Pass the Settings to a command, and accept `--json` after the command's name too."""
    option = click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=_json_flag,
        help="Machine-readable output.",
    )
    return cast(F, option(_pass_settings(f)))


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


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
