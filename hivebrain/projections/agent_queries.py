"""Read queries over agents: every agent, one by uuid or name, and their memory counts.

A memory names its agent by uuid (or, for memories written by a program that gave a plain name,
by that name): `memory_counts` counts both under the agent.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from hivebrain.events.memory import DEFAULT_AGENT

from .schema import LIVE


@dataclass(frozen=True, slots=True)
class AgentRecord:
    id: str
    name: str
    description: str
    ts: float | None
    node: str  # author of the winning record
    lamport: int
    working_max_age: float | None  # seconds; None: the built-in default
    working_max_count: int | None
    consolidate_to: str | None


_COLUMNS = (
    "id, name, description, ts, node, lamport, working_max_age, working_max_count, consolidate_to"
)


def _record(row: Any) -> AgentRecord:
    return AgentRecord(
        id=str(row[0]),
        name=str(row[1]),
        description=str(row[2] or ""),
        ts=float(row[3]) if row[3] is not None else None,
        node=str(row[4]),
        lamport=int(row[5]),
        working_max_age=float(row[6]) if row[6] is not None else None,
        working_max_count=int(row[7]) if row[7] is not None else None,
        consolidate_to=str(row[8]) if row[8] is not None else None,
    )


def agents(conn: sqlite3.Connection) -> list[AgentRecord]:
    """Every agent, by name then uuid."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM agents ORDER BY name, id").fetchall()
    return [_record(r) for r in rows]


def find(conn: sqlite3.Connection, ref: str) -> list[AgentRecord]:
    """The agent whose uuid is `ref`, else every agent named `ref` (several only when two
    nodes created the same name while apart)."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM agents WHERE id = ?", (ref,)).fetchone()
    if row is not None:
        return [_record(row)]
    rows = conn.execute(f"SELECT {_COLUMNS} FROM agents WHERE name = ? ORDER BY id", (ref,))
    return [_record(r) for r in rows]


def memory_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """agent uuid (or the plain agent value of memories no agent record claims, such as
    DEFAULT_AGENT) -> space -> live memories."""
    rows = conn.execute(
        "SELECT coalesce(a.id, m.agent), m.space, count(*) FROM memories m "
        "LEFT JOIN agents a ON a.id = m.agent OR (a.name = m.agent AND NOT EXISTS "
        "(SELECT 1 FROM agents b WHERE b.id = m.agent)) "
        f"WHERE {LIVE.format(r='m')} GROUP BY 1, 2"
    )
    out: dict[str, dict[str, int]] = {}
    for agent, space, count in rows:
        out.setdefault(str(agent or DEFAULT_AGENT), {})[str(space)] = int(count)
    return out
