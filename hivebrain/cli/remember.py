"""`hivebrain remember`: store a memory."""

from __future__ import annotations

import sys
from typing import Any

import click

from hivebrain.app.agents import resolve_at
from hivebrain.app.brain import Written
from hivebrain.app.connection import open_brain
from hivebrain.cli.interactions import instrument
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings
from hivebrain.errors import ConfigError
from hivebrain.events.memory import SPACES, MemoryStored


def say_written(verb: str) -> Any:
    def text(data: dict[str, Any]) -> str:
        line = f"{verb} {data['id']} ({data['stream']} #{data['seq']})"
        if not data["applied"]:
            line += "; the node will apply it when it runs"
        return line

    return text


@click.command()
@click.argument("text", required=False)
@click.option("--agent", default="default", show_default=True, help="Name or uuid.")
@click.option("--shared", is_flag=True, help="Visible to every agent.")
@click.option("--space", type=click.Choice(SPACES), default="long_term", show_default=True)
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--source", default="cli", show_default=True)
@click.option("--confidence", type=click.FloatRange(0, 1), default=1.0, show_default=True)
@click.option("--user", "user_message", help="A conversation turn: the user's message...")
@click.option("--response", help="...and the bot's response.")
@click.option("--session", help="The conversation session of the turn.")
@pass_settings
def remember(settings: Settings, /, text: str | None, **fields: Any) -> None:
    """Store a memory (TEXT, '-' for stdin, or --user with --response)."""
    if text == "-":
        text = sys.stdin.read().strip()
    if text is None and not (fields["user_message"] and fields["response"]):
        raise ConfigError("give the memory's TEXT, or both --user and --response")
    fields["tags"] = tuple(fields["tags"])
    fields["agent"] = resolve_at(settings.db_path, fields["agent"])
    payload = MemoryStored(text=text or None, **fields)

    async def go() -> Written:
        async with open_brain(settings) as brain:
            return await brain.remember(payload)

    emit(settings, run(go()).as_dict(), say_written("remembered"))


instrument(remember, "cli.remember")
