"""`--log-interaction` for `hivebrain recall` and `hivebrain remember`: the command, timed, is
recorded as an `interaction.logged` event (secrets redacted) once it has run.

Off by default for the CLI; on with the flag or `HIVEBRAIN_LOG_INTERACTIONS=1`. What is
recorded: the query (or the remembered text), the command, success or failure, the latency,
the agent and session given. The CLI's output is the user's, so no result summary is kept.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import click
import structlog

from hivebrain.app.connection import open_brain
from hivebrain.app.interactions import Interaction, InteractionLog
from hivebrain.cli.support import run
from hivebrain.config import Settings
from hivebrain.errors import HivebrainError

log = structlog.get_logger(__name__)

FLAG = "hivebrain.log_interaction"


def _flag(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    ctx.meta[FLAG] = value


def _query(tool: str, params: dict[str, Any]) -> str:
    if tool == "cli.remember" and not params.get("text"):
        return f"user: {params.get('user_message') or ''}\nresponse: {params.get('response') or ''}"
    return str(params.get("query") or params.get("text") or "")


def record(settings: Settings, interaction: Interaction) -> None:
    """Write one interaction; a failure to reach the node is a warning, not the command's."""

    async def go() -> None:
        async with open_brain(settings) as brain:
            await InteractionLog(brain.publish_acked).record(interaction)

    try:
        run(go())
    except HivebrainError as exc:
        log.warning("interaction.not_logged", tool=interaction.tool, error=str(exc))


def instrument(command: click.Command, tool: str) -> None:
    """Give `command` the `--log-interaction` flag and record its runs when it is set."""
    original = command.callback
    assert original is not None
    command.params.append(
        click.Option(
            ["--log-interaction"],
            is_flag=True,
            envvar="HIVEBRAIN_LOG_INTERACTIONS",
            expose_value=False,
            callback=_flag,
            help="Record this call in the interaction log (secrets redacted).",
        )
    )

    @functools.wraps(original)
    def callback(*args: Any, **params: Any) -> Any:
        ctx = click.get_current_context()
        if not ctx.meta.get(FLAG):
            return original(*args, **params)
        started = time.perf_counter()
        outcome = "failure"
        try:
            result = original(*args, **params)
            outcome = "success"
            return result
        finally:
            settings = ctx.find_object(Settings)
            if settings is not None:
                record(
                    settings,
                    Interaction(
                        tool=tool,
                        query=_query(tool, params),
                        outcome="success" if outcome == "success" else "failure",
                        latency_ms=(time.perf_counter() - started) * 1000,
                        agent=str(params.get("agent") or "default"),
                        session=params.get("session"),
                    ),
                )

    command.callback = callback
