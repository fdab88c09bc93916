"""What several commands share: running a coroutine, printing text or JSON, the settings,
reaching NATS (the embedded server for the length of one command when no node runs) and
opening the brain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import click

from hivebrain.config import Settings
from hivebrain.errors import ConfigError

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
