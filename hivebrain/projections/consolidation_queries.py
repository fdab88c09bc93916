"""Which working memories the consolidation policies move now: a pure read of the projection
and a time, so every node that sees the same memories plans the same moves.

Per agent, with its policy (its record, else the built-in defaults; a run's options override
both): every working memory stored longer than `max_age` ago moves; of the rest, all but the
`max_count` most recent move (oldest first). Age is counted from the memory's `ts`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from hivebrain.durations import format_duration
from hivebrain.events.agent import ConsolidationTarget
from hivebrain.events.memory import DEFAULT_AGENT

from .agent_queries import AgentRecord, find
from .schema import LIVE

#: The built-in policy, for agents whose record does not set one.
DEFAULT_MAX_AGE_S = 7 * 24 * 3600.0
DEFAULT_MAX_COUNT = 200
DEFAULT_TARGET: ConsolidationTarget = "long_term"


@dataclass(frozen=True, slots=True)
class Policy:
    max_age: float = DEFAULT_MAX_AGE_S  # seconds
    max_count: int = DEFAULT_MAX_COUNT
    to: ConsolidationTarget = DEFAULT_TARGET


@dataclass(frozen=True, slots=True)
class Overrides:
    """Options of one run; None: the agent's policy."""

    max_age: float | None = None
    max_count: int | None = None
    to: ConsolidationTarget | None = None


def policy_of(record: AgentRecord | None, overrides: Overrides = Overrides()) -> Policy:
    """The policy of one run for an agent: the run's options, else the agent's record, else
    the built-in defaults."""
    max_age, max_count, to = DEFAULT_MAX_AGE_S, DEFAULT_MAX_COUNT, DEFAULT_TARGET
    if record is not None:
        if record.working_max_age is not None:
            max_age = record.working_max_age
        if record.working_max_count is not None:
            max_count = record.working_max_count
        if record.consolidate_to is not None:
            to = cast(ConsolidationTarget, record.consolidate_to)
    return Policy(
        max_age=overrides.max_age if overrides.max_age is not None else max_age,
        max_count=overrides.max_count if overrides.max_count is not None else max_count,
        to=overrides.to or to,
    )


@dataclass(frozen=True, slots=True)
class Move:
    memory: str
    agent: str  # the agent's uuid (or the memory's agent value when no record claims it)
    to: ConsolidationTarget
    reason: str


def _record(conn: sqlite3.Connection, agent: str) -> AgentRecord | None:
    """The record of a memory's agent value: by uuid, else the first of that name."""
    found = find(conn, agent)
    return found[0] if found else None


def plan(
    conn: sqlite3.Connection,
    now: float,
    overrides: Overrides = Overrides(),
    agents: Sequence[str] | None = None,
) -> list[Move]:
    """The moves a run would publish, agent by agent (`agents`: only these memory agent
    values), oldest memory first."""
    rows = conn.execute(
        "SELECT m.agent, m.id, m.ts FROM memories m WHERE m.space = 'working' AND "
        f"{LIVE.format(r='m')} ORDER BY m.agent, m.ts DESC, m.id DESC"
    ).fetchall()
    # Memories that name their agent by name (a program gave a plain name) count with the
    # memories that name it by uuid: one agent, one policy, one max count.
    records: dict[str, AgentRecord | None] = {}
    by_agent: dict[str, list[tuple[str, float]]] = {}
    for value, memory, ts in rows:
        value = str(value or DEFAULT_AGENT)
        if value not in records:
            records[value] = _record(conn, value)
        record = records[value]
        agent = record.id if record is not None else value
        by_agent.setdefault(agent, []).append((str(memory), float(ts or 0)))
    moves: list[Move] = []
    for agent, memories in by_agent.items():
        if agents is not None and agent not in agents:
            continue
        memories.sort(key=lambda m: (m[1], m[0]), reverse=True)  # newest first
        policy = policy_of(_record(conn, agent), overrides)
        cutoff = now - policy.max_age
        old = f"consolidated: stored more than {format_duration(policy.max_age)} ago"
        surplus = f"consolidated: more than {policy.max_count} working memories"
        kept = 0
        mine: list[Move] = []
        for memory, ts in memories:
            if ts < cutoff:
                mine.append(Move(memory, agent, policy.to, old))
            elif kept < policy.max_count:
                kept += 1
            else:
                mine.append(Move(memory, agent, policy.to, surplus))
        moves.extend(reversed(mine))
    return moves
