"""A conversation session's history: its memories (turns of user message and response, or
plain notes) in the hive's total order of their `memory.stored` events, so every node that
holds the same events prints the same history, whichever node wrote each turn."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from .memory_queries import Filters


@dataclass(frozen=True, slots=True)
class Turn:
    id: str
    lamport: int
    node: str
    event_id: str
    ts: float | None
    agent: str
    space: str
    user_message: str | None
    response: str | None
    text: str  # the memory's current text (for a turn: the message and the response)


def history(conn: sqlite3.Connection, session: str, filters: Filters, limit: int) -> list[Turn]:
    """The live memories of `session` that `filters` let through, in the order of their
    stored events' stamps (Lamport, node, event id), the first `limit` of them."""
    where, args = replace(filters, session=session).sql()
    rows = conn.execute(
        "SELECT m.id, m.stored_lamport, m.stored_node, m.stored_event, m.ts, m.agent, m.space, "
        f"m.user_message, m.response, m.text FROM memories m WHERE {where} AND m.deleted = 0 "
        "AND m.text IS NOT NULL "
        "ORDER BY m.stored_lamport, m.stored_node, m.stored_event, m.id LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [Turn(*row) for row in rows]
