"""Agent commands: create, list and set the working-memory policy of AI instances."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

import click

from hivebrain.app.agents import WorkingPolicy, create, set_policy
from hivebrain.app.brain import Written
from hivebrain.app.connection import open_brain
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings
from hivebrain.durations import format_duration, parse_duration
from hivebrain.events.agent import CONSOLIDATION_TARGETS, ConsolidationTarget
from hivebrain.events.memory import DEFAULT_AGENT, SPACES
from hivebrain.projections.agent_queries import agents, memory_counts
from hivebrain.projections.consolidation_queries import policy_of
from hivebrain.projections.store import ProjectionStore


def _policy(max_age: str | None, max_count: int | None, to: str | None) -> WorkingPolicy:
    return WorkingPolicy(
        max_age=parse_duration(max_age) if max_age is not None else None,
        max_count=max_count,
        to=cast(ConsolidationTarget | None, to),  # a click.Choice of CONSOLIDATION_TARGETS
    )


def _policy_options(f: Any) -> Any:
    f = click.option(
        "--consolidate-to",
        "to",
        type=click.Choice(CONSOLIDATION_TARGETS),
        help="Where consolidation moves its working memories [long_term].",
    )(f)
    f = click.option(
        "--working-max-count",
        "max_count",
        type=click.IntRange(0),
        help="Working memories kept before the oldest are consolidated [200].",
    )(f)
    return click.option(
        "--working-max-age",
        "max_age",
        help="Age (e.g. 12h, 7d) after which a working memory is consolidated [7d].",
    )(f)


@click.group()
def agent() -> None:
    """AI instances: a persistent uuid, a name, their own memory spaces."""


@agent.command("create")
@click.argument("name")
@click.option("--description", default="", help="What this agent is for.")
@_policy_options
@pass_settings
def agent_create(
    settings: Settings,
    name: str,
    description: str,
    max_age: str | None,
    max_count: int | None,
    to: str | None,
) -> None:
    """Create an agent and print its uuid (a name this node knows is refused)."""
    policy = _policy(max_age, max_count, to)

    async def go() -> Written:
        async with open_brain(settings) as brain:
            return await create(brain, name, description, policy)

    written = run(go())
    data = {
        "id": written.event.entity,
        "name": name.strip(),
        "event_id": written.event.event_id,
        "applied": written.applied,
    }
    emit(settings, data, lambda d: str(d["id"]))


@agent.command("policy")
@click.argument("agent_ref", metavar="AGENT")
@_policy_options
@click.option("--reset", is_flag=True, help="Back to the built-in defaults (then the options).")
@pass_settings
def agent_policy(
    settings: Settings,
    agent_ref: str,
    max_age: str | None,
    max_count: int | None,
    to: str | None,
    reset: bool,
) -> None:
    """Change an agent's working-memory policy (AGENT: name or uuid)."""
    policy = _policy(max_age, max_count, to)

    async def go() -> Written:
        async with open_brain(settings) as brain:
            return await set_policy(brain, agent_ref, policy, clear=reset)

    written = run(go())
    emit(
        settings,
        {"id": written.event.entity, "applied": written.applied},
        lambda d: f"policy of {d['id']} updated",
    )


@agent.command("list")
@pass_settings
def agent_list(settings: Settings) -> None:
    """Every agent this node knows, with its policy and live memories per space."""
    store = ProjectionStore(settings.db_path)
    try:
        records = agents(store.connection)
        counts = memory_counts(store.connection)
    finally:
        store.close()
    rows: list[dict[str, Any]] = []
    if not any(r.name == DEFAULT_AGENT for r in records):
        policy = policy_of(None)
        rows.append(
            {
                "id": DEFAULT_AGENT,
                "name": DEFAULT_AGENT,
                "description": "the agent of memories stored without one",
                "node": None,
                "policy": asdict(policy),
                "memories": counts.get(DEFAULT_AGENT, {}),
            }
        )
    for r in records:
        rows.append(
            {
                "id": r.id,
                "name": r.name,
                "description": r.description,
                "node": r.node,
                "policy": asdict(policy_of(r)),
                "memories": counts.get(r.id, {}),
            }
        )

    def text(rows: list[dict[str, Any]]) -> str:
        lines = []
        for row in rows:
            p = row["policy"]
            spaces = " ".join(f"{s}={row['memories'][s]}" for s in SPACES if s in row["memories"])
            lines.append(
                f"{row['id']:<32}  {row['name']}  (working: {format_duration(p['max_age'])}, "
                f"{p['max_count']} -> {p['to']})  {spaces or 'no memories'}"
            )
            if row["description"]:
                lines.append(f"{'':<32}  {row['description']}")
        return "\n".join(lines)

    emit(settings, rows, text)
