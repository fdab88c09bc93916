"""Consolidation planning: which working memories move, where, and why."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivebrain.app.agents import WorkingPolicy, resolve, set_policy
from hivebrain.app.brain import Brain
from hivebrain.durations import format_duration, parse_duration
from hivebrain.errors import ConfigError
from hivebrain.events import Event, Payload
from hivebrain.events.agent import AgentCreated
from hivebrain.events.memory import DEFAULT_AGENT, MemoryForgotten, MemoryMoved, MemoryStored
from hivebrain.node.node import Node
from hivebrain.projections import ProjectionStore
from hivebrain.projections.agent_queries import find
from hivebrain.projections.consolidation_queries import (
    DEFAULT_MAX_COUNT,
    Overrides,
    plan,
    policy_of,
)

DAY = 86400.0
NOW = 100 * DAY
PLANNER = "01a1feef5c335de621b2b9e705584d42"


def ev(payload: Payload, lamport: int, entity: str, ts: float = NOW) -> Event:
    return Event.new(payload, node="n1", lamport=lamport, entity=entity, ts=ts)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    store = ProjectionStore(tmp_path / "p.db")
    events = [
        ev(AgentCreated(name="planner", working_max_count=2, consolidate_to="archive"), 1, PLANNER),
        # the default agent: 7 days, 200, long_term
        ev(MemoryStored(text="old", space="working"), 2, "d-old", NOW - 8 * DAY),
        ev(MemoryStored(text="new", space="working"), 3, "d-new", NOW - 6 * DAY),
        ev(MemoryStored(text="kept", space="long_term"), 4, "d-lt", NOW - 30 * DAY),
        ev(MemoryStored(text="gone", space="working"), 5, "d-gone", NOW - 30 * DAY),
        ev(MemoryForgotten(), 6, "d-gone"),
        # planner: keep the 2 most recent working memories
        *[
            ev(MemoryStored(text=f"p{i}", agent=PLANNER, space="working"), 10 + i, f"p{i}", NOW - i)
            for i in range(5)
        ],
        ev(MemoryMoved(space="working"), 20, "d-lt2"),  # arrives before its memory.stored
        ev(MemoryStored(text="moved back", space="long_term"), 19, "d-lt2", NOW - 9 * DAY),
    ]
    store.apply_events(events)
    yield store.connection
    store.close()


def test_old_and_surplus_working_memories_move_with_a_reason(conn: sqlite3.Connection) -> None:
    moves = plan(conn, NOW)
    by_id = {m.memory: m for m in moves}
    assert set(by_id) == {"d-old", "d-lt2", "p4", "p3", "p2"}
    assert by_id["d-old"].to == "long_term" and "stored more than 1w ago" in by_id["d-old"].reason
    assert by_id["p4"].to == "archive" and by_id["p4"].reason.endswith(
        "more than 2 working memories"
    )
    assert [m.memory for m in moves if m.agent == PLANNER] == ["p4", "p3", "p2"]  # oldest first


def test_overrides_and_a_selection_of_agents(conn: sqlite3.Connection) -> None:
    moves = plan(conn, NOW, Overrides(max_age=5 * DAY, max_count=0, to="long_term"), ["default"])
    assert {m.memory for m in moves} == {"d-old", "d-new", "d-lt2"}
    assert {m.to for m in moves} == {"long_term"}
    assert plan(conn, NOW, agents=["nobody"]) == []


def test_durations() -> None:
    assert parse_duration("7d") == 7 * DAY and parse_duration("90") == 90.0
    assert parse_duration("1.5h") == 5400.0 and parse_duration("2w") == 14 * DAY
    assert format_duration(7 * DAY) == "1w" and format_duration(36 * 3600) == "36h"
    for bad in ("", "0d", "-1d", "soon", "3y"):
        with pytest.raises(ConfigError, match="bad duration"):
            parse_duration(bad)
    assert policy_of(None).max_count == DEFAULT_MAX_COUNT


def test_memories_naming_their_agent_by_name_count_with_its_uuid(tmp_path: Path) -> None:
    with ProjectionStore(tmp_path / "p.db") as store:
        store.apply_events(
            [
                ev(AgentCreated(name="planner", working_max_count=2), 1, PLANNER),
                *[
                    ev(MemoryStored(text=f"u{i}", agent=PLANNER, space="working"), 2 + i, f"u{i}")
                    for i in range(2)
                ],
                ev(MemoryStored(text="n0", agent="planner", space="working"), 9, "n0", NOW - 5),
            ]
        )
        moves = plan(store.connection, NOW)
        assert [(m.memory, m.agent) for m in moves] == [("n0", PLANNER)]
        assert plan(store.connection, NOW, agents=[PLANNER]) == moves


async def test_the_default_agents_record_keeps_the_name_memories_hold(node: Node) -> None:
    assert node.bus is not None
    publisher = await node.bus.publisher()
    brain = Brain(node.settings, node.bus, publisher)
    try:
        await brain.remember(MemoryStored(text="before the policy", space="working"))
        first = await set_policy(brain, DEFAULT_AGENT, WorkingPolicy(max_count=1))
        again = await set_policy(brain, DEFAULT_AGENT, WorkingPolicy(max_age=3600))
        conn = brain.store.connection
        # One record whatever node writes it, and memories keep saying "default".
        assert first.event.entity == again.event.entity == DEFAULT_AGENT
        assert [a.id for a in find(conn, DEFAULT_AGENT)] == [DEFAULT_AGENT]
        assert resolve(conn, DEFAULT_AGENT) == DEFAULT_AGENT
        after = await brain.remember(
            MemoryStored(text="after the policy", agent=resolve(conn, "default"), space="working")
        )
        assert after.applied
        moves = plan(conn, time.time())
        assert [m.agent for m in moves] == [DEFAULT_AGENT] and len(moves) == 1
    finally:
        await publisher.close()
        brain.store.close()
