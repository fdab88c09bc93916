"""Session context and tool-cache commands, and `hivebrain mcp`.

    hivebrain context get SESSION [KEY]         one key, or the whole context
    hivebrain context set SESSION KEY VALUE     VALUE is text; --json-value parses it as JSON
    hivebrain context list SESSION              keys with when and where they were set
    hivebrain context clear SESSION [KEY]       one key, or every key of the session
    hivebrain cache get TOOL ARGS               a cached tool output (ARGS: JSON)
    hivebrain cache put TOOL ARGS OUTPUT        cache a tool output (OUTPUT: JSON)
    hivebrain mcp                               the MCP server over stdio

TTLs come from `--ttl` / `--context-ttl` / `--cache-ttl` or the environment
(`HIVEBRAIN_CONTEXT_TTL`, `HIVEBRAIN_CACHE_TTL`), read here at the entry point.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from hivebrain.app.context import (
    DEFAULT_CACHE_TTL_S,
    DEFAULT_CONTEXT_TTL_S,
    ContextSettings,
    SessionContext,
    ToolCache,
    parse_ttl,
)
from hivebrain.cli.main import cli, emit, pass_settings, run
from hivebrain.cli.support import reach_nats
from hivebrain.config import Settings
from hivebrain.errors import ConfigError

T = TypeVar("T")


def _ttl(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    return None if value is None else parse_ttl(value)


def context_ttl_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--ttl",
        "--context-ttl",
        "ttl",
        envvar="HIVEBRAIN_CONTEXT_TTL",
        callback=_ttl,
        help="Keep context entries this long: seconds or 90s, 15m, 1h, 7d [7d].",
    )(f)


def _json_argument(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{what} is not JSON: {exc}") from None


def _with_context(
    settings: Settings, ttl: int | None, work: Callable[[SessionContext], Awaitable[T]]
) -> T:
    async def go() -> T:
        async with reach_nats(settings) as bus:
            context = SessionContext(bus, settings.node, ttl or DEFAULT_CONTEXT_TTL_S)
            return await work(await context.open())

    return run(go())


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@cli.group()
def context() -> None:
    """Per-session context: JSON values under keys, expiring after a TTL (7 days)."""


@context.command("get")
@click.argument("session")
@click.argument("key", required=False)
@pass_settings
def context_get(settings: Settings, session: str, key: str | None) -> None:
    """Print KEY's value, or the session's whole context as JSON."""

    async def work(ctx: SessionContext) -> Any:
        if key is None:
            return {e.key: e.value for e in await ctx.list(session)}
        entry = await ctx.get(session, key)
        if entry is None:
            raise ConfigError(f"no key {key!r} in the context of session {session!r}")
        return entry.value

    value = _with_context(settings, None, work)
    emit(settings, value, lambda v: _shown(v) if key is not None else json.dumps(v, indent=2))


@context.command("set")
@click.argument("session")
@click.argument("key")
@click.argument("value")
@click.option("--json-value", is_flag=True, help="VALUE is JSON (else it is stored as text).")
@context_ttl_option
@pass_settings
def context_set(
    settings: Settings, session: str, key: str, value: str, json_value: bool, ttl: int | None
) -> None:
    """Set KEY to VALUE in the session's context."""
    parsed = _json_argument(value, "VALUE") if json_value else value

    async def work(ctx: SessionContext) -> dict[str, Any]:
        return (await ctx.set(session, key, parsed)).as_dict()

    data = _with_context(settings, ttl, work)
    emit(settings, data, lambda d: f"set {d['key']} in {session} until {_when(d['expires_at'])}")


@context.command("list")
@click.argument("session")
@pass_settings
def context_list(settings: Settings, session: str) -> None:
    """The session's keys, with when and on which node each was set."""

    async def work(ctx: SessionContext) -> list[dict[str, Any]]:
        return [e.as_dict() for e in await ctx.list(session)]

    rows = _with_context(settings, None, work)

    def text(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return f"no context for session {session!r}"
        return "\n".join(
            f"{r['key']}  = {_shown(r['value'])[:60]}  ({r['node']}, {_when(r['at'])}, "
            f"expires {_when(r['expires_at'])})"
            for r in rows
        )

    emit(settings, rows, text)


@context.command("clear")
@click.argument("session")
@click.argument("key", required=False)
@pass_settings
def context_clear(settings: Settings, session: str, key: str | None) -> None:
    """Remove KEY, or every key of the session."""

    async def work(ctx: SessionContext) -> int:
        if key is not None:
            return int(await ctx.delete(session, key))
        return await ctx.clear(session)

    cleared = _with_context(settings, None, work)
    emit(
        settings,
        {"session": session, "key": key, "cleared": cleared},
        f"cleared {cleared} key{'' if cleared == 1 else 's'} of session {session}",
    )


@cli.group()
def cache() -> None:
    """Tool outputs cached by tool and arguments, expiring after a TTL (1 hour)."""


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
    args = _json_argument(arguments, "ARGUMENTS")

    async def work(tool_cache: ToolCache) -> Any:
        entry = await tool_cache.get(tool, args)
        return None if entry is None else entry.as_dict()

    found = _with_cache(settings, None, work)
    if found is None:
        click.echo(f"no cached output of {tool} for these arguments", err=True)
        raise SystemExit(1)
    emit(settings, found, lambda d: _shown(d["value"]))


@cache.command("put")
@click.argument("tool")
@click.argument("arguments")
@click.argument("output")
@click.option(
    "--ttl",
    "--cache-ttl",
    "ttl",
    envvar="HIVEBRAIN_CACHE_TTL",
    callback=_ttl,
    help="Keep it this long: seconds or 90s, 15m, 1h [1h].",
)
@pass_settings
def cache_put(settings: Settings, tool: str, arguments: str, output: str, ttl: int | None) -> None:
    """Cache OUTPUT (JSON) as the result of TOOL called with ARGUMENTS (JSON)."""
    args = _json_argument(arguments, "ARGUMENTS")
    value = _json_argument(output, "OUTPUT")

    async def work(tool_cache: ToolCache) -> dict[str, Any]:
        return (await tool_cache.put(tool, args, value)).as_dict()

    data = _with_cache(settings, ttl, work)
    emit(settings, data, lambda d: f"cached {tool} until {_when(d['expires_at'])}")


@cli.command("mcp")
@click.option(
    "--context-ttl",
    envvar="HIVEBRAIN_CONTEXT_TTL",
    callback=_ttl,
    help="How long session context is kept: seconds or 90s, 15m, 1h, 7d [7d].",
)
@click.option(
    "--cache-ttl",
    envvar="HIVEBRAIN_CACHE_TTL",
    callback=_ttl,
    help="How long cached tool outputs are kept [1h].",
)
@click.option(
    "--log-interactions/--no-log-interactions",
    envvar="HIVEBRAIN_LOG_INTERACTIONS",
    default=True,
    show_default=True,
    help="Record recalls and stores as interaction.logged events (secrets redacted).",
)
@pass_settings
def mcp_command(
    settings: Settings, context_ttl: int | None, cache_ttl: int | None, log_interactions: bool
) -> None:
    """Serve hivebrain's memory tools to an MCP client over stdio (stdout is the channel)."""
    from hivebrain.mcp.server import McpOptions, serve  # the SDK is imported only by this command

    ttls = ContextSettings(
        context_ttl=context_ttl or DEFAULT_CONTEXT_TTL_S,
        cache_ttl=cache_ttl or DEFAULT_CACHE_TTL_S,
    )
    run(serve(settings, McpOptions(ttls=ttls, log_interactions=log_interactions)))
