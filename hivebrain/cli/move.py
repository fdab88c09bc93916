"""`hivebrain move`: a memory to another space."""

from __future__ import annotations

from typing import Any, cast

import click

from hivebrain.app.brain import Written
from hivebrain.app.connection import open_brain
from hivebrain.cli.support import emit, pass_settings, require, run
from hivebrain.config import Settings
from hivebrain.events.memory import SPACES, Space


@click.command()
@click.argument("memory_id")
@click.argument("space", type=click.Choice(SPACES))
@click.option("--reason", default="", help="Why (kept in the event).")
@pass_settings
def move(settings: Settings, memory_id: str, space: str, reason: str) -> None:
    """Move a memory to another SPACE."""
    require(bool(memory_id.strip()), "give the memory's id")

    async def go() -> Written:
        async with open_brain(settings) as brain:
            return await brain.move(memory_id, cast(Space, space), reason)

    w = run(go())
    data = {
        "id": w.event.entity,
        "event_id": w.event.event_id,
        "space": space,
        "lamport": w.event.lamport,
        "applied": w.applied,
    }

    def text(d: dict[str, Any]) -> str:
        line = f"moved {d['id']} to {d['space']}"
        return line if d["applied"] else line + "; the node will apply it when it runs"

    emit(settings, data, text)
