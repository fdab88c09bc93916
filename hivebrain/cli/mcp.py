"""`hivebrain mcp`: the MCP server over stdio."""

from __future__ import annotations

import click

from hivebrain.app.context import (
    DEFAULT_CACHE_TTL_S,
    DEFAULT_CONTEXT_TTL_S,
    ContextSettings,
)
from hivebrain.cli.context import ttl_option
from hivebrain.cli.support import pass_settings, run
from hivebrain.config import Settings


@click.command("mcp")
@click.option(
    "--context-ttl",
    envvar="HIVEBRAIN_CONTEXT_TTL",
    callback=ttl_option,
    help="How long session context is kept: seconds or 90s, 15m, 1h, 7d [7d].",
)
@click.option(
    "--cache-ttl",
    envvar="HIVEBRAIN_CACHE_TTL",
    callback=ttl_option,
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
