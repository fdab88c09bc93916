"""`consolidate`: move old or surplus working memories out of `working`."""

from __future__ import annotations

import time
from typing import Any, cast

import click

from hivebrain.app.agents import resolve
from hivebrain.app.connection import open_brain
from hivebrain.app.consolidation import ConsolidationSummary, publish_moves
from hivebrain.cli.memories import agent_names
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings
from hivebrain.durations import parse_duration
from hivebrain.events.agent import CONSOLIDATION_TARGETS, ConsolidationTarget
from hivebrain.projections.consolidation_queries import Move, Overrides, plan
from hivebrain.projections.store import ProjectionStore


@click.command()
@click.option("--agent", "agent_refs", multiple=True, help="Only this agent (repeatable) [all].")
@click.option("--max-age", help="Override every agent's max age (e.g. 12h, 7d).")
@click.option("--max-count", type=click.IntRange(0), help="Override every agent's max count.")
@click.option("--to", type=click.Choice(CONSOLIDATION_TARGETS), help="Override the target space.")
@click.option("--dry-run", is_flag=True, help="Show what would move; publish nothing.")
@pass_settings
def consolidate(
    settings: Settings,
    agent_refs: tuple[str, ...],
    max_age: str | None,
    max_count: int | None,
    to: str | None,
    dry_run: bool,
) -> None:
    """Move working memories stored longer ago than the agent's max age, and all but its
    max-count most recent, to long_term (or archive), with memory.moved events that say why.
    Each agent's policy comes from its record (hivebrain agent policy), else the built-in
    defaults (7d, 200, long_term). Safe to run again, and on several nodes at once."""
    overrides = Overrides(
        max_age=parse_duration(max_age) if max_age is not None else None,
        max_count=max_count,
        to=cast(ConsolidationTarget | None, to),
    )
    store = ProjectionStore(settings.db_path)
    try:
        only = [resolve(store.connection, a) for a in agent_refs] or None
        moves = plan(store.connection, time.time(), overrides, only)
        names = agent_names(store)
    finally:
        store.close()
    summary = ConsolidationSummary()
    if moves and not dry_run:

        async def go() -> ConsolidationSummary:
            async with open_brain(settings) as brain:
                return await publish_moves(brain, moves)

        summary = run(go())

    def row(m: Move) -> dict[str, Any]:
        return {
            "id": m.memory,
            "agent": m.agent,
            "agent_name": names.get(m.agent, m.agent),
            "to": m.to,
            "reason": m.reason,
        }

    data = {
        "dry_run": dry_run,
        "moves": [row(m) for m in moves],
        "moved": summary.moved,
        "applied": summary.applied,
    }

    def text(d: dict[str, Any]) -> str:
        if not d["moves"]:
            return "nothing to consolidate"
        verb = "would move" if d["dry_run"] else "moved"
        lines = [
            f"{verb} {m['id']} [{m['agent_name']}] to {m['to']}: {m['reason']}" for m in d["moves"]
        ]
        lines.append(f"{len(d['moves'])} working memories {verb.replace('would move', 'to move')}")
        if not d["dry_run"] and not d["applied"]:
            lines[-1] += "; the node will apply them when it runs"
        return "\n".join(lines)

    emit(settings, data, text)
