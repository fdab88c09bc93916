"""Agent isolation lives in the memory filters, so every reader gets it: keyword search,
listing, vector search, recall and session history."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from hivebrain.events import Event, Payload
from hivebrain.events.agent import AgentCreated
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.memory import MemoryStored
from hivebrain.projections import MemoryHit, ProjectionStore
from hivebrain.projections.memory_queries import Filters
from hivebrain.projections.session_queries import history
from hivebrain.projections.store import VectorHit

CODER = "01a1feef5c335de621b2b9e705584d42"
MODEL = "test-model"


def ev(payload: Payload, lamport: int, entity: str) -> Event:
    return Event.new(payload, node="n1", lamport=lamport, entity=entity, ts=100.0 + lamport)


def vector(n: int) -> bytes:
    return struct.pack("<4f", *[1.0 if i == n else 0.0 for i in range(4)])


EVENTS = [
    ev(AgentCreated(name="coder"), 1, CODER),
    ev(MemoryStored(text="the kettle is in the kitchen", session="s1"), 2, "m1"),
    ev(MemoryStored(text="the kettle needs descaling", agent=CODER, session="s1"), 3, "m2"),
    ev(MemoryStored(text="kettle firmware on GPIO 4", agent="coder", space="working"), 4, "m3"),
    ev(MemoryStored(text="kettle rules for all", agent=CODER, shared=True), 5, "m4"),
    ev(MemoryStored(text="the kettle song", agent="poet", session="s1"), 6, "m5"),
    *[
        ev(EmbeddingComputed(model=MODEL, dim=4, vector=vector(0), content_hash=m), 10 + n, m)
        for n, m in enumerate(("m1", "m2", "m3", "m4", "m5"))
    ],
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProjectionStore]:
    s = ProjectionStore(tmp_path / "p.db")
    s.apply_events(EVENTS)
    yield s
    s.close()


def ids(hits: Sequence[MemoryHit | VectorHit]) -> set[str]:
    return {h.id if isinstance(h, MemoryHit) else h.entity for h in hits}


def test_keyword_search_and_listing_see_their_agent_and_shared_memories(
    store: ProjectionStore,
) -> None:
    assert ids(store.search_memories("kettle")) == {"m1", "m4"}  # the default agent's + shared
    assert ids(store.search_memories("kettle", agent="default")) == {"m1", "m4"}
    # By name or uuid; memories holding the uuid or the plain name both count.
    assert ids(store.search_memories("kettle", agent="coder")) == {"m2", "m3", "m4"}
    assert ids(store.search_memories("kettle", agent=CODER)) == {"m2", "m3", "m4"}
    assert ids(store.search_memories("kettle", agent="poet")) == {"m5", "m4"}
    assert ids(store.search_memories("kettle", all_agents=True)) == {"m1", "m2", "m3", "m4", "m5"}
    assert ids(store.search_memories("kettle", agent="poet", all_agents=True)) == {"m5"}
    assert ids(store.list_memories(agent="coder", spaces=["working", "archive"])) == {"m3"}
    assert ids(store.list_memories(agent="coder", space="long_term", spaces=["working"])) == {
        "m2",
        "m3",
        "m4",
    }


def test_vectors_and_recall_keep_agents_apart(store: ProjectionStore) -> None:
    near = store.search_vectors(vector(0), MODEL, kinds=("memory",))
    assert ids(near) == {"m1", "m4"}
    assert ids(store.search_vectors(vector(0), MODEL, agent="coder")) == {"m2", "m3", "m4"}
    hybrid = store.recall("kettle", query_vector=vector(0), model=MODEL)
    assert {h.id for h in hybrid.hits} == {"m1", "m4"}
    every = store.recall("kettle", query_vector=vector(0), model=MODEL, all_agents=True)
    assert {h.id for h in every.hits} == {"m1", "m2", "m3", "m4", "m5"}


def test_session_history_is_filtered_by_the_same_rule(store: ProjectionStore) -> None:
    conn = store.connection
    assert [t.id for t in history(conn, "s1", Filters(all_agents=True), 10)] == ["m1", "m2", "m5"]
    assert [t.id for t in history(conn, "s1", Filters(agent="coder"), 10)] == ["m2"]
    assert [t.id for t in history(conn, "s1", Filters(), 1)] == ["m1"]
