"""`hivebrain cache`: tool outputs cached by tool and arguments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from hivebrain.app.connection import reach_nats
from hivebrain.app.context import (
    DEFAULT_CACHE_TTL_S,
    ToolCache,
)
from hivebrain.cli.context import json_argument, shown, ttl_option, when
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings


@click.group()
def cache() -> None:
    """Tool outputs cached by tool and arguments, expiring after a TTL (1 hour)."""


T = TypeVar("T")


def _with_cache(
    settings: Settings, ttl: int | None, work: Callable[[ToolCache], Awaitable[T]]
) -> T:
    async def go() -> T:
        async with reach_nats(settings) as bus:
            tool_cache = ToolCache(bus, settings.node, ttl or DEFAULT_CACHE_TTL_S)
            return await work(await tool_cache.open())

    return run(go())


@cache.command("get")
@click.argument("tool")
@click.argument("arguments")
@pass_settings
def cache_get(settings: Settings, tool: str, arguments: str) -> None:
    """The cached output of TOOL called with ARGUMENTS (JSON); exit 1 on a miss."""
    args = json_argument(arguments, "ARGUMENTS")

    async def work(tool_cache: ToolCache) -> Any:
        entry = await tool_cache.get(tool, args)
        return None if entry is None else entry.as_dict()

    found = _with_cache(settings, None, work)
    if found is None:
        click.echo(f"no cached output of {tool} for these arguments", err=True)
        raise SystemExit(1)
    emit(settings, found, lambda d: shown(d["value"]))


@cache.command("put")
@click.argument("tool")
@click.argument("arguments")
@click.argument("output")
@click.option(
    "--ttl",
    "--cache-ttl",
    "ttl",
    envvar="HIVEBRAIN_CACHE_TTL",
    callback=ttl_option,
    help="Keep it this long: seconds or 90s, 15m, 1h [1h].",
)
@pass_settings
def cache_put(settings: Settings, tool: str, arguments: str, output: str, ttl: int | None) -> None:
    """Cache OUTPUT (JSON) as the result of TOOL called with ARGUMENTS (JSON)."""
    args = json_argument(arguments, "ARGUMENTS")
    value = json_argument(output, "OUTPUT")

    async def work(tool_cache: ToolCache) -> dict[str, Any]:
        return (await tool_cache.put(tool, args, value)).as_dict()

    data = _with_cache(settings, ttl, work)
    emit(settings, data, lambda d: f"cached {tool} until {when(d['expires_at'])}")
