"""`hivebrain edit`: a memory's text or tags."""

from __future__ import annotations

import click

from hivebrain.app.brain import Written
from hivebrain.app.connection import open_brain
from hivebrain.cli.remember import say_written
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings


@click.command()
@click.argument("memory_id")
@click.option("--text", help="The new text.")
@click.option("--tag", "tag", multiple=True, help="Add a tag (repeatable).")
@click.option("--untag", "untag", multiple=True, help="Remove a tag (repeatable).")
@pass_settings
def edit(
    settings: Settings,
    memory_id: str,
    text: str | None,
    tag: tuple[str, ...],
    untag: tuple[str, ...],
) -> None:
    """Edit a memory's text or tags, on top of the version this node sees."""

    async def go() -> Written:
        async with open_brain(settings) as brain:
            return await brain.edit(memory_id, text=text, tag=tag, untag=untag)

    emit(settings, run(go()).as_dict(), say_written("edited"))
