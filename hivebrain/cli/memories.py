"""Memory spaces: list an agent's memories by space, move a memory to another space."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from hivebrain.app.agents import lookup
from hivebrain.cli.support import emit, pass_settings
from hivebrain.config import Settings
from hivebrain.events.memory import SPACES
from hivebrain.projections.agent_queries import agents
from hivebrain.projections.store import ProjectionStore


@click.group()
def memories() -> None:
    """Browse memories by agent and space."""


def agent_names(store: ProjectionStore) -> dict[str, str]:
    """agent uuid -> name, for display."""
    return {a.id: a.name for a in agents(store.connection)}


@memories.command("list")
@click.option("--agent", help="Name or uuid [the default agent].")
@click.option("--all-agents", is_flag=True, help="Every agent's memories.")
@click.option(
    "--space", "spaces", type=click.Choice(SPACES), multiple=True, help="Repeatable [all]."
)
@click.option("--tag", "tags", multiple=True, help="Only memories with this tag (repeatable).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--forgotten", is_flag=True, help="Include forgotten memories.")
@pass_settings
def memories_list(
    settings: Settings,
    agent: str | None,
    all_agents: bool,
    spaces: tuple[str, ...],
    tags: tuple[str, ...],
    limit: int,
    forgotten: bool,
) -> None:
    """An agent's memories (and the shared ones), most recent first, from one or several
    spaces."""
    store = ProjectionStore(settings.db_path)
    try:
        if agent is not None and not all_agents:
            lookup(store.connection, agent)  # an unknown name is an error, not an empty list
        hits = store.list_memories(
            limit=limit,
            agent=agent,
            all_agents=all_agents,
            spaces=spaces,
            tags=tags,
            include_forgotten=forgotten,
        )
        names = agent_names(store)
    finally:
        store.close()
    rows = [{**asdict(h), "agent_name": names.get(h.agent, h.agent)} for h in hits]

    def text(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "no memories"
        lines = []
        for r in rows:
            tags = f"  #{' #'.join(r['tags'])}" if r["tags"] else ""
            gone = " (forgotten)" if r["forgotten"] else ""
            flat = " ".join(r["text"].split())
            lines.append(f"{r['id']}  [{r['agent_name']}/{r['space']}]{gone} {flat}{tags}")
        return "\n".join(lines)

    emit(settings, rows, text)
