"""`hivebrain forget`: a tombstone for a memory."""

from __future__ import annotations

import click

from hivebrain.app.brain import Written
from hivebrain.app.connection import open_brain
from hivebrain.cli.remember import say_written
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings


@click.command()
@click.argument("memory_id")
@click.option("--reason", default="")
@pass_settings
def forget(settings: Settings, memory_id: str, reason: str) -> None:
    """Forget a memory (a tombstone event; the history stays in the log)."""

    async def go() -> Written:
        async with open_brain(settings) as brain:
            return await brain.forget(memory_id, reason)

    emit(settings, run(go()).as_dict(), say_written("forgot"))
