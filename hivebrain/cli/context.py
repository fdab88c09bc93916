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

from hivebrain.app.connection import reach_nats
from hivebrain.app.context import (
    DEFAULT_CONTEXT_TTL_S,
    SessionContext,
    parse_ttl,
)
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings
from hivebrain.errors import ConfigError, NotFound

T = TypeVar("T")


def ttl_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    return None if value is None else parse_ttl(value)


def context_ttl_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--ttl",
        "--context-ttl",
        "ttl",
        envvar="HIVEBRAIN_CONTEXT_TTL",
        callback=ttl_option,
        help="Keep context entries this long: seconds or 90s, 15m, 1h, 7d [7d].",
    )(f)


def json_argument(text: str, what: str) -> Any:
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


def when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@click.group()
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
            raise NotFound(f"no key {key!r} in the context of session {session!r}")
        return entry.value

    value = _with_context(settings, None, work)
    emit(settings, value, lambda v: shown(v) if key is not None else json.dumps(v, indent=2))


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
    parsed = json_argument(value, "VALUE") if json_value else value

    async def work(ctx: SessionContext) -> dict[str, Any]:
        return (await ctx.set(session, key, parsed)).as_dict()

    data = _with_context(settings, ttl, work)
    emit(settings, data, lambda d: f"set {d['key']} in {session} until {when(d['expires_at'])}")


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
            f"{r['key']}  = {shown(r['value'])[:60]}  ({r['node']}, {when(r['at'])}, "
            f"expires {when(r['expires_at'])})"
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
