"""Read queries over the memory tables: keyword search, listing, one memory, conflicts."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hivebrain.events import Stamp
from hivebrain.events.memory import DEFAULT_AGENT

from .devices import TIERS
from .fts import match_query

Strategy = Literal["lww", "device-priority"]
STRATEGIES: tuple[Strategy, ...] = ("lww", "device-priority")


@dataclass(frozen=True, slots=True)
class Filters:
    """What a read of memories is limited to. Agent isolation is the rule here, so every
    reader (CLI, MCP server, recall) gets it: unless `all_agents`, only the memories of
    `agent` (DEFAULT_AGENT when None) and the memories marked shared match. An agent is
    matched by its uuid or its name (memories hold the uuid; a name is looked up in the
    agents table, so every agent of that name matches). With `all_agents`, every agent's
    memories match, narrowed to `agent` alone when it is given. `spaces`: any of these
    (together with `space`). `session`: the conversation session."""

    agent: str | None = None
    space: str | None = None
    tags: tuple[str, ...] = ()
    node: str | None = None
    since: float | None = None
    until: float | None = None
    all_agents: bool = False
    spaces: tuple[str, ...] = ()
    session: str | None = None

    @property
    def memory_only(self) -> bool:
        """Whether a filter only memories have (space(s), tags, session) is set: then only
        memories can match. The agent is not one: it says whose memories may match, and
        knowledge and observations belong to no agent."""
        return (
            self.space is not None
            or bool(self.spaces)
            or bool(self.tags)
            or self.session is not None
        )

    def common_sql(self, alias: str) -> tuple[str, list[Any]]:
        """WHERE conditions of the filters every kind has (author node, time range) on a row
        `alias` with `node` and `ts` columns (knowledge chunks, observations); "1" if none."""
        parts: list[str] = []
        args: list[Any] = []
        if self.node is not None:
            parts.append(f"{alias}.node = ?")
            args.append(self.node)
        if self.since is not None:
            parts.append(f"{alias}.ts >= ?")
            args.append(self.since)
        if self.until is not None:
            parts.append(f"{alias}.ts < ?")
            args.append(self.until)
        return " AND ".join(parts) or "1", args

    def sql(self) -> tuple[str, list[Any]]:
        """WHERE conditions on memories `m` (an empty string means no condition)."""
        parts: list[str] = ["m.stored_event != ''"]
        args: list[Any] = []
        if not self.all_agents:
            parts.append(f"({AGENT_MATCH} OR m.shared = 1)")
            args.extend([self.agent or DEFAULT_AGENT] * 3)
        elif self.agent is not None:
            parts.append(AGENT_MATCH)
            args.extend([self.agent] * 3)
        spaces = (*((self.space,) if self.space is not None else ()), *self.spaces)
        if spaces:
            parts.append(f"m.space IN ({', '.join('?' for _ in spaces)})")
            args.extend(spaces)
        if self.session is not None:
            parts.append("m.session = ?")
            args.append(self.session)
        if self.node is not None:
            parts.append("m.stored_node = ?")
            args.append(self.node)
        if self.since is not None:
            parts.append("m.ts >= ?")
            args.append(self.since)
        if self.until is not None:
            parts.append("m.ts < ?")
            args.append(self.until)
        for tag in self.tags:
            parts.append(
                f"EXISTS (SELECT 1 FROM memory_tags t WHERE t.mid = m.mid AND t.tag = ? "
                f"AND {_NOT_REMOVED})"
            )
            args.append(tag)
        return " AND ".join(parts), args


#: The memory's agent is the given one, by uuid or by name (three parameters, the same).
AGENT_MATCH = (
    "m.agent IN (SELECT ? UNION SELECT id FROM agents WHERE name = ? "
    "UNION SELECT name FROM agents WHERE id = ?)"
)

_NOT_REMOVED = (
    "NOT EXISTS (SELECT 1 FROM memory_untags u WHERE u.mid = t.mid AND u.tag = t.tag "
    "AND u.observed = t.event_id)"
)


@dataclass(frozen=True, slots=True)
class MemoryHit:
    id: str
    text: str
    agent: str
    space: str
    tags: tuple[str, ...]
    node: str
    lamport: int
    ts: float
    strength: float
    forgotten: bool
    score: float  # -bm25: higher is better (0.0 in listings)


@dataclass(frozen=True, slots=True)
class MemoryRow:
    """A memory's current state. `stored` is False while only later events have arrived."""

    id: str
    stored: bool
    text: str | None
    version: Stamp | None  # stamp of the current text
    agent: str | None
    space: str | None
    session: str | None
    user_message: str | None
    response: str | None
    source: str | None
    confidence: float | None
    shared: bool
    node: str | None  # author of the winning memory.stored
    lamport: int
    ts: float | None
    forgotten: bool
    strength: float
    tags: tuple[str, ...]
    tag_events: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tag -> live add ids


@dataclass(frozen=True, slots=True)
class Version:
    event_id: str
    lamport: int
    node: str
    text: str

    @property
    def stamp(self) -> Stamp:
        return Stamp(self.lamport, self.node, self.event_id)


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two or more edits of one memory made on the same base version."""

    memory: str
    base: Stamp
    winner: Version
    losers: tuple[Version, ...]
    strategy: Strategy


HIT_COLUMNS = (
    "m.id, m.text, m.agent, m.space, m.stored_node, m.stored_lamport, m.ts, m.strength, m.deleted"
)


def hits(conn: sqlite3.Connection, rows: list[Any]) -> list[MemoryHit]:
    tags = live_tags(conn, [r[0] for r in rows])
    return [
        MemoryHit(
            id=r[0],
            text=r[1],
            agent=r[2],
            space=r[3],
            tags=tuple(sorted(tags.get(r[0], {}))),
            node=r[4],
            lamport=r[5],
            ts=r[6],
            strength=r[7] / 1000,
            forgotten=bool(r[8]),
            score=r[9],
        )
        for r in rows
    ]


def search(
    conn: sqlite3.Connection, query: str, limit: int, filters: Filters, include_forgotten: bool
) -> list[MemoryHit]:
    match = match_query(query)
    if match is None or limit < 1:
        return []
    where, args = filters.sql()
    indexes = ["memories_fts", "memories_forgotten_fts"] if include_forgotten else ["memories_fts"]
    selects = [
        f"SELECT {HIT_COLUMNS}, -bm25({fts}) AS score FROM {fts} "
        f"JOIN memories m ON m.rowid = {fts}.rowid WHERE {fts} MATCH ? AND {where}"
        for fts in indexes
    ]
    sql = " UNION ALL ".join(selects) + " ORDER BY score DESC, id LIMIT ?"
    params = [v for _ in indexes for v in (match, *args)]
    rows = conn.execute(sql, (*params, limit)).fetchall()
    return hits(conn, rows)


def recent(
    conn: sqlite3.Connection, limit: int, filters: Filters, include_forgotten: bool
) -> list[MemoryHit]:
    where, args = filters.sql()
    if not include_forgotten:
        where += " AND m.deleted = 0"
    rows = conn.execute(
        f"SELECT {HIT_COLUMNS}, 0.0 FROM memories m WHERE {where} AND m.text IS NOT NULL "
        "ORDER BY m.ts DESC, m.id LIMIT ?",
        (*args, limit),
    ).fetchall()
    return hits(conn, rows)


def live_tags(conn: sqlite3.Connection, memories: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """memory -> tag -> the add event ids of it not removed (a tag is present iff any)."""
    out: dict[str, dict[str, list[str]]] = {}
    if not memories:
        return out
    rows = conn.execute(
        "SELECT m.id, t.tag, t.event_id FROM memories m JOIN memory_tags t ON t.mid = m.mid "
        f"WHERE m.id IN (SELECT value FROM json_each(?)) AND {_NOT_REMOVED} "
        "ORDER BY m.id, t.tag, t.event_id",
        (json.dumps(list(memories)),),
    )
    for memory, tag, event_id in rows:
        out.setdefault(memory, {}).setdefault(tag, []).append(event_id)
    return out


def _versions(conn: sqlite3.Connection, memory: str) -> list[tuple[str | None, Version]]:
    rows = conn.execute(
        "SELECT base_event, event_id, lamport, node, text FROM memory_versions "
        "WHERE mid = (SELECT mid FROM memories WHERE id = ?)",
        (memory,),
    )
    return [(b, Version(e, lamport, node, text)) for b, e, lamport, node, text in rows]


def _tier_rank(conn: sqlite3.Connection, node: str) -> int:
    row = conn.execute(
        "SELECT value FROM devices WHERE device = ? AND field = 'tier'", (node,)
    ).fetchone()
    tier = json.loads(row[0]) if row else None
    return TIERS.index(tier) if tier in TIERS else -1


def _pick(conn: sqlite3.Connection, versions: Sequence[Version], strategy: Strategy) -> Version:
    if strategy == "device-priority":
        return max(versions, key=lambda v: (_tier_rank(conn, v.node), v.stamp))
    return max(versions, key=lambda v: v.stamp)


def memory(conn: sqlite3.Connection, entity: str, strategy: Strategy) -> MemoryRow | None:
    row = conn.execute(
        "SELECT id, stored_event, text, text_lamport, text_node, text_event, agent, space, "
        "session, user_message, response, source, confidence, shared, stored_node, "
        "stored_lamport, ts, deleted, strength FROM memories WHERE id = ?",
        (entity,),
    ).fetchone()
    if row is None:
        return None
    text, version = row[2], Stamp(row[3], row[4], row[5]) if row[5] else None
    if strategy != "lww":
        text, version = _resolve(conn, entity, strategy, text, version)
    tags = live_tags(conn, [entity]).get(entity, {})
    return MemoryRow(
        id=row[0],
        stored=bool(row[1]),
        text=text,
        version=version,
        agent=row[6],
        space=row[7],
        session=row[8],
        user_message=row[9],
        response=row[10],
        source=row[11],
        confidence=row[12],
        shared=bool(row[13]),
        node=row[14] or None,
        lamport=row[15],
        ts=row[16],
        forgotten=bool(row[17]),
        strength=row[18] / 1000,
        tags=tuple(sorted(tags)),
        tag_events={tag: tuple(ids) for tag, ids in sorted(tags.items())},
    )


def _resolve(
    conn: sqlite3.Connection,
    entity: str,
    strategy: Strategy,
    text: str | None,
    version: Stamp | None,
) -> tuple[str | None, Stamp | None]:
    """The current text under `strategy`: the highest-stamped version that lost no conflict."""
    groups: dict[str, list[Version]] = {}
    every = _versions(conn, entity)
    for base, v in every:
        if base is not None:
            groups.setdefault(base, []).append(v)
    losers = {
        v.event_id
        for group in groups.values()
        if len(group) > 1
        for v in group
        if v is not _pick(conn, group, strategy)
    }
    candidates = [v for _, v in every if v.event_id not in losers]
    if not candidates:
        return text, version
    best = max(candidates, key=lambda v: v.stamp)
    return best.text, best.stamp


def conflicts(conn: sqlite3.Connection, strategy: Strategy) -> list[Conflict]:
    rows = conn.execute(
        "SELECT m.id, v.base_lamport, v.base_node, v.base_event, v.event_id, v.lamport, "
        "v.node, v.text FROM memory_versions v JOIN (SELECT mid, base_event "
        "FROM memory_versions WHERE base_event IS NOT NULL GROUP BY mid, base_event "
        "HAVING count(*) > 1) g ON g.mid = v.mid AND g.base_event = v.base_event "
        "JOIN memories m ON m.mid = v.mid "
        "ORDER BY m.id, v.base_event, v.lamport, v.node, v.event_id"
    ).fetchall()
    groups: dict[tuple[str, Stamp], list[Version]] = {}
    for memory_id, bl, bn, be, e, lamport, node, text in rows:
        groups.setdefault((memory_id, Stamp(bl, bn, be)), []).append(
            Version(e, lamport, node, text)
        )
    out = []
    for (memory_id, base), versions in groups.items():
        winner = _pick(conn, versions, strategy)
        losers = tuple(v for v in versions if v is not winner)
        out.append(Conflict(memory_id, base, winner, losers, strategy))
    return out
