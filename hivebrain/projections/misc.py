"""Apply rules of the smaller families.

* agent.created: the agent row (name, description, working-memory policy), last-writer-wins.
* embedding.computed: one vector per (entity, model), last-writer-wins.
* interaction.logged: one row per event (the learning queue).
* task.requested / assigned / completed: each event's fields last-writer-wins as a group,
  and `status` (requested, assigned, done/failed/cancelled) last-writer-wins over all three.
* training.*: nothing beyond the `applied` record the store keeps for every event.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, cast

from hivebrain.events import Event
from hivebrain.events.agent import AgentCreated
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.interaction import InteractionLogged
from hivebrain.events.task import TaskAssigned, TaskCompleted, TaskRequested

from .projection import Projection, canonical_json, lww_upsert, stamp_columns

_AGENT_SQL = lww_upsert(
    "agents",
    ["id"],
    ["name", "description", "ts", "working_max_age", "working_max_count", "consolidate_to"],
)
_EMBEDDING_SQL = lww_upsert("embeddings", ["entity", "model"], ["dim", "vector", "content_hash"])
_INTERACTION_COLUMNS = (
    "event_id",
    "entity",
    "node",
    "lamport",
    "ts",
    "query",
    "response",
    "tool",
    "outcome",
    "feedback",
    "latency_ms",
    "agent",
    "session",
)
_INTERACTION_SQL = (
    f"INSERT OR IGNORE INTO interactions ({', '.join(_INTERACTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _INTERACTION_COLUMNS)})"
)
_TASK_REQUESTED_SQL = lww_upsert(
    "tasks",
    ["id"],
    ["kind", "prompt", "requires", "min_tier", "requested_by"],
    stamp_columns("requested"),
)
_TASK_ASSIGNED_SQL = lww_upsert(
    "tasks", ["id"], ["assignee", "assign_reason"], stamp_columns("assigned")
)
_TASK_COMPLETED_SQL = lww_upsert("tasks", ["id"], ["result"], stamp_columns("completed"))
_TASK_STATUS_SQL = lww_upsert("tasks", ["id"], ["status"], stamp_columns("status"))


def apply_agent(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(AgentCreated, e.payload)
        rows.append(
            (
                e.entity,
                p.name,
                p.description,
                e.ts,
                p.working_max_age,
                p.working_max_count,
                p.consolidate_to,
                e.lamport,
                e.node,
                e.event_id,
            )
        )
    conn.executemany(_AGENT_SQL, rows)


def apply_embedding(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(EmbeddingComputed, e.payload)
        rows.append(
            (e.entity, p.model, p.dim, p.vector, p.content_hash, e.lamport, e.node, e.event_id)
        )
    conn.executemany(_EMBEDDING_SQL, rows)


def apply_interaction(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(InteractionLogged, e.payload)
        rows.append(
            (
                e.event_id,
                e.entity,
                e.node,
                e.lamport,
                e.ts,
                p.query,
                p.response,
                p.tool,
                p.outcome,
                p.feedback,
                p.latency_ms,
                p.agent,
                p.session,
            )
        )
    conn.executemany(_INTERACTION_SQL, rows)


def _status(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(_TASK_STATUS_SQL, rows)


def apply_task_requested(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(TaskRequested, e.payload)
        rows.append(
            (
                e.entity,
                p.kind,
                p.prompt,
                canonical_json(p.requires),
                p.min_tier,
                e.node,
                e.lamport,
                e.node,
                e.event_id,
            )
        )
    conn.executemany(_TASK_REQUESTED_SQL, rows)
    _status(conn, [(e.entity, "requested", e.lamport, e.node, e.event_id) for e in events])


def apply_task_assigned(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(TaskAssigned, e.payload)
        rows.append((e.entity, p.assignee, p.reason, e.lamport, e.node, e.event_id))
    conn.executemany(_TASK_ASSIGNED_SQL, rows)
    _status(conn, [(e.entity, "assigned", e.lamport, e.node, e.event_id) for e in events])


def apply_task_completed(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    status = []
    for e in events:
        p = cast(TaskCompleted, e.payload)
        rows.append((e.entity, p.result, e.lamport, e.node, e.event_id))
        status.append((e.entity, p.status, e.lamport, e.node, e.event_id))
    conn.executemany(_TASK_COMPLETED_SQL, rows)
    _status(conn, status)


AGENTS = Projection(name="agents", handlers={AgentCreated: apply_agent})
EMBEDDINGS = Projection(name="embeddings", handlers={EmbeddingComputed: apply_embedding})
INTERACTIONS = Projection(name="interactions", handlers={InteractionLogged: apply_interaction})
TASKS = Projection(
    name="tasks",
    handlers={
        TaskRequested: apply_task_requested,
        TaskAssigned: apply_task_assigned,
        TaskCompleted: apply_task_completed,
    },
)
