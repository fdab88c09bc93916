"""Agents: AI instances with a persistent uuid and a name.

An agent is created with an `agent.created` event (entity = a new uuid). Names are unique in
this node's view: creating a name it already knows is refused. Two nodes cut off from each
other can still both create one name; both agents then exist, and a name that stands for
several agents is refused where one agent must be chosen (use the uuid).

Memories name their agent by uuid. DEFAULT_AGENT ("default") is the agent of memories stored
without one; it needs no record, though it may have one (to give it a working-memory policy).
That record's id is DEFAULT_AGENT itself, so memories keep naming it "default" and every node
that gives it a policy writes the same record.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from hivebrain.app.brain import Brain, Written
from hivebrain.errors import ConfigError, NotFound
from hivebrain.events import new_id
from hivebrain.events.agent import AgentCreated, ConsolidationTarget
from hivebrain.events.memory import DEFAULT_AGENT
from hivebrain.projections.agent_queries import AgentRecord, find
from hivebrain.projections.store import ProjectionStore


def lookup(conn: sqlite3.Connection, ref: str) -> AgentRecord | None:
    """The one agent `ref` (uuid or name) stands for; None for DEFAULT_AGENT without a record.
    NotFound when no agent has that name, ConfigError when several have."""
    found = find(conn, ref)
    if len(found) == 1:
        return found[0]
    if not found:
        if ref == DEFAULT_AGENT:
            return None
        raise NotFound(
            f"no agent {ref!r} on this node (create it with: hivebrain agent create {ref})"
        )
    ids = ", ".join(a.id for a in found)
    raise ConfigError(f"several agents are named {ref!r} ({ids}): give the uuid")


def resolve(conn: sqlite3.Connection, ref: str) -> str:
    """What a memory stores as its agent: the uuid of agent `ref`, or DEFAULT_AGENT."""
    record = lookup(conn, ref)
    return DEFAULT_AGENT if record is None else record.id


def resolve_plain(conn: sqlite3.Connection, ref: str) -> str:
    """Like `resolve`, but a name no agent has yet is kept as it is (the MCP server lets a
    program name its agent without creating it first). ConfigError when several agents have
    that name."""
    found = find(conn, ref)
    if len(found) > 1:
        lookup(conn, ref)  # raises, naming them
    return found[0].id if found else ref


@dataclass(frozen=True, slots=True)
class WorkingPolicy:
    """An agent's working-memory policy as given on the command line (None: unchanged when
    updating, the built-in default when creating)."""

    max_age: float | None = None  # seconds
    max_count: int | None = None
    to: ConsolidationTarget | None = None


async def create(
    brain: Brain,
    name: str,
    description: str = "",
    policy: WorkingPolicy | None = None,
    *,
    entity: str | None = None,
) -> Written:
    """Publish `agent.created` for a new uuid (or `entity`); refused when this node knows the
    name."""
    name = name.strip()
    if not name:
        raise ConfigError("an agent needs a name")
    known = [a for a in find(brain.store.connection, name) if a.name == name]
    if known:
        raise ConfigError(f"an agent named {name!r} exists already ({known[0].id})")
    policy = policy or WorkingPolicy()
    payload = AgentCreated(
        name=name,
        description=description,
        working_max_age=policy.max_age,
        working_max_count=policy.max_count,
        consolidate_to=policy.to,
    )
    return await brain.publish(payload, entity=entity or new_id())


async def set_policy(brain: Brain, ref: str, policy: WorkingPolicy, clear: bool = False) -> Written:
    """Publish the agent's record again with its working-memory policy changed (`clear`: back
    to the built-in defaults first). DEFAULT_AGENT gets a record the first time, with the id
    DEFAULT_AGENT."""
    record = lookup(brain.store.connection, ref)
    if record is None:
        description = "the agent of memories stored without one"
        return await create(brain, DEFAULT_AGENT, description, policy, entity=DEFAULT_AGENT)
    target = cast(ConsolidationTarget | None, record.consolidate_to)
    base = (
        WorkingPolicy()
        if clear
        else WorkingPolicy(record.working_max_age, record.working_max_count, target)
    )
    payload = AgentCreated(
        name=record.name,
        description=record.description,
        working_max_age=policy.max_age if policy.max_age is not None else base.max_age,
        working_max_count=policy.max_count if policy.max_count is not None else base.max_count,
        consolidate_to=policy.to or base.to,
    )
    return await brain.publish(payload, entity=record.id)


def resolve_at(db_path: Path, ref: str) -> str:
    """`resolve` against the projection database at `db_path`."""
    store = ProjectionStore(db_path)
    try:
        return resolve(store.connection, ref)
    finally:
        store.close()
