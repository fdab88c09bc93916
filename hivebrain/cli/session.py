"""Conversation sessions: the history of one session, from any node."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import click

from hivebrain.app.agents import lookup
from hivebrain.cli.memories import agent_names
from hivebrain.cli.support import emit, pass_settings, require
from hivebrain.config import Settings
from hivebrain.projections.memory_queries import Filters
from hivebrain.projections.session_queries import history
from hivebrain.projections.store import ProjectionStore


@click.group()
def session() -> None:
    """Conversation sessions."""


@session.command("show")
@click.argument("session_id", metavar="SESSION")
@click.option("--agent", help="Only this agent's turns (and shared ones) [every agent's].")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@pass_settings
def session_show(settings: Settings, session_id: str, agent: str | None, limit: int) -> None:
    """The session's turns in the hive's order (Lamport stamp, then node and event id), the
    same on every node that holds them."""
    require(bool(session_id.strip()), "give the session's id")
    store = ProjectionStore(settings.db_path)
    try:
        if agent is not None:
            lookup(store.connection, agent)
        filters = Filters(agent=agent, all_agents=agent is None)
        turns = history(store.connection, session_id, filters, limit)
        names = agent_names(store)
    finally:
        store.close()
    rows = [{**asdict(t), "agent_name": names.get(t.agent, t.agent)} for t in turns]

    def text(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return f"no turns in session {session_id}"
        lines = []
        for n, r in enumerate(rows, 1):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"] or 0))
            lines.append(f"#{n} {when}  {r['agent_name']}@{r['node']}  L{r['lamport']}  {r['id']}")
            if r["user_message"] is None and r["response"] is None:
                lines.append(f"  note: {r['text']}")
            if r["user_message"] is not None:
                lines.append(f"  user: {r['user_message']}")
            if r["response"] is not None:
                lines.append(f"  assistant: {r['response']}")
        return "\n".join(lines)

    emit(settings, rows, text)
