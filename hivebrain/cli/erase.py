"""`hivebrain erase`: erase a memory on every node (`--status`: who has confirmed it)."""

from __future__ import annotations

import sys
from typing import Any

import click

from hivebrain.app.connection import open_brain
from hivebrain.app.erase import erase as erase_memory
from hivebrain.app.erase import erase_status
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings
from hivebrain.errors import ConfigError
from hivebrain.projections.store import ProjectionStore


@click.command()
@click.argument("memory_id")
@click.option("--status", "status", is_flag=True, help="Show which nodes have confirmed it.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_settings
def erase(settings: Settings, memory_id: str, status: bool, yes: bool) -> None:
    """Erase a memory everywhere: every node deletes its events from its streams and its rows
    from its projection, and confirms. Unlike `forget`, nothing of it is kept: not undoable."""
    if status:
        store = ProjectionStore(settings.db_path)
        try:
            data = erase_status(store, memory_id)
        finally:
            store.close()
        emit(settings, data, _say_status)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError("erase cannot be undone: confirm it with --yes")
        click.confirm(f"Erase memory {memory_id} on every node? This cannot be undone", abort=True)

    async def go() -> dict[str, Any]:
        async with open_brain(settings) as brain:
            written = await erase_memory(brain, memory_id)
        return {**written.as_dict(), "memory": memory_id}

    emit(
        settings,
        run(go()),
        lambda d: (
            f"erased {d['memory']} (every node deletes it and confirms: "
            f"hivebrain erase --status {d['memory']})"
        ),
    )


def _say_status(d: dict[str, Any]) -> str:
    lines = [f"memory {d['memory']} erased by {d['erased_by']} (sha256 {d['content_hash']})"]
    for node, messages in d["confirmed"].items():
        lines.append(f"  confirmed  {node} ({messages} messages deleted)")
    for node in d["pending"]:
        lines.append(f"  pending    {node}")
    return "\n".join(lines)
