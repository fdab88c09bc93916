"""Working-memory consolidation: old or surplus `working` memories move to `long_term` (or
`archive`) with `memory.moved` events that say why. Nothing is deleted.

Per agent, with its policy (the agent's record, else the built-in defaults below; options of
one run override both):

1. every working memory stored longer than `max_age` ago moves;
2. of the rest, all but the `max_count` most recent move (oldest first).

Age is measured from the memory's `memory.stored` (its wall-clock `ts`). Any node can run it:
the moves are ordinary events, a second run finds nothing left to move, and two nodes running
it at once move the same memories to the same space (the space is last-writer-wins, so the
repeated move is harmless).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from hivebrain.app.brain import Brain
from hivebrain.errors import ConfigError
from hivebrain.events import Event
from hivebrain.events.agent import ConsolidationTarget
from hivebrain.events.memory import DEFAULT_AGENT, MemoryMoved
from hivebrain.projections.agent_queries import AgentRecord, find
from hivebrain.projections.schema import LIVE
from hivebrain.transport.publisher import Ack

#: The built-in policy, for agents whose record does not set one.
DEFAULT_MAX_AGE_S = 7 * 24 * 3600.0
DEFAULT_MAX_COUNT = 200
DEFAULT_TARGET: ConsolidationTarget = "long_term"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    """Seconds of "90s", "30m", "12h", "7d", "2w" (a bare number is seconds)."""
    found = _DURATION.match(text.lower())
    if not found or float(found.group(1)) <= 0:
        raise ConfigError(f"bad duration {text!r}: use e.g. 90s, 30m, 12h, 7d or 2w")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def format_duration(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


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


@dataclass
class ConsolidationSummary:
    moved: int = 0
    applied: bool = True


async def publish_moves(brain: Brain, moves: Sequence[Move]) -> ConsolidationSummary:
    """Publish one `memory.moved` per move (acks awaited together), then wait for the local
    projection to apply the last."""
    summary = ConsolidationSummary()
    futures: list[asyncio.Future[Ack]] = []
    for move in moves:
        payload = MemoryMoved(space=move.to, from_space="working", reason=move.reason)
        event = Event.new(
            payload, node=brain.settings.node, lamport=brain.clock.tick(), entity=move.memory
        )
        futures.append(await brain.publisher.publish(event))
    acks = await asyncio.gather(*futures)
    summary.moved = len(acks)
    if acks:
        last = max(acks, key=lambda a: a.seq)
        summary.applied = await brain.wait_applied(last, timeout=5.0 + len(acks) / 500)
    return summary
