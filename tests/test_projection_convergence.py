"""Convergence: the projection state is a function of the set of events applied."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hivebrain.events import Event, Payload, VersionRef, encode
from hivebrain.events.agent import AgentCreated
from hivebrain.events.device import DeviceRegistered, DeviceStatusChanged, DeviceUpdated
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.interaction import InteractionLogged
from hivebrain.events.knowledge import ChunkAdded, DocumentIngested, KnowledgeRemoved
from hivebrain.events.memory import (
    MemoryDecayed,
    MemoryEdited,
    MemoryForgotten,
    MemoryMoved,
    MemoryReinforced,
    MemoryRestored,
    MemoryStored,
    TagRemoval,
)
from hivebrain.events.observation import ObservationWritten, ReadingsAggregated
from hivebrain.events.subjects import subject
from hivebrain.events.task import TaskAssigned, TaskCompleted, TaskRequested
from hivebrain.events.training import AdapterPromoted
from hivebrain.projections.store import Delivery, ProjectionStore


def ev(payload: Payload, lamport: int, node: str, entity: str) -> Event:
    return Event.new(payload, node=node, lamport=lamport, entity=entity, ts=1000.0 + lamport)


def event_mix() -> list[Event]:
    """Every merge rule at once: concurrent edits, moves, tombstones, tags, sums, removals."""
    s1 = ev(MemoryStored(text="apples are red", tags=("fruit", "color")), 1, "n1", "m1")
    edit_a = ev(MemoryEdited(base=VersionRef.of(s1.stamp), text="apples are green"), 3, "n2", "m1")
    edit_b = ev(
        MemoryEdited(base=VersionRef.of(s1.stamp), text="apples are yellow", tag=("new",)),
        3,
        "n3",
        "m1",
    )
    edit_c = ev(MemoryEdited(base=VersionRef.of(edit_a.stamp), text="apples: green"), 5, "n1", "m1")
    untag = ev(
        MemoryEdited(
            base=VersionRef.of(edit_c.stamp),
            untag=(TagRemoval(tag="fruit", observed=(s1.event_id,)),),
        ),
        6,
        "n2",
        "m1",
    )
    readd = ev(MemoryEdited(base=VersionRef.of(edit_c.stamp), tag=("fruit",)), 6, "n3", "m1")
    s2 = ev(MemoryStored(text="the wifi password rotates monthly"), 2, "n2", "m2")
    s3 = ev(MemoryStored(user_message="hi", response="hello there", session="s"), 1, "n1", "m3")
    edit3 = ev(MemoryEdited(base=VersionRef.of(s3.stamp), text="greeting"), 2, "n2", "m3")
    s4 = ev(MemoryStored(text="the garage door code", space="personal_logs"), 1, "n3", "m4")
    s_ch = ev(ChunkAdded(**_chunk("d1", 0)), 2, "n1", "c1")
    return [
        s1,
        edit_a,
        edit_b,
        edit_c,
        untag,
        readd,
        ev(MemoryMoved(space="archive"), 4, "n2", "m1"),
        ev(MemoryMoved(space="working"), 4, "n3", "m1"),
        s2,
        ev(MemoryForgotten(), 3, "n1", "m2"),
        ev(MemoryEdited(base=VersionRef.of(s2.stamp), text="resurrected?"), 7, "n3", "m2"),
        ev(MemoryRestored(), 2, "n2", "m2"),
        s3,
        edit3,
        ev(MemoryReinforced(amount=0.1), 2, "n1", "m3"),
        ev(MemoryReinforced(amount=0.1), 2, "n2", "m3"),
        ev(MemoryReinforced(amount=0.1), 3, "n3", "m3"),
        ev(MemoryDecayed(amount=0.2), 4, "n1", "m3"),
        s4,
        ev(MemoryForgotten(), 2, "n3", "m4"),
        ev(MemoryRestored(), 3, "n1", "m4"),
        ev(_doc(), 1, "n1", "d1"),
        s_ch,
        ev(ChunkAdded(**_chunk("d1", 1)), 2, "n1", "c2"),
        ev(KnowledgeRemoved(), 3, "n2", "d1"),
        ev(_doc(), 4, "n1", "d1"),
        ev(ChunkAdded(**_chunk("d1", 0)), 5, "n1", "c1"),
        ev(DeviceRegistered(name="n1", tier="edge", cores=4), 1, "n1", "n1"),
        ev(DeviceUpdated(tier="gpu"), 2, "n1", "n1"),
        ev(DeviceUpdated(cores=8, tier=None), 1, "n2", "n1"),
        ev(DeviceStatusChanged(status="offline"), 3, "n2", "n1"),
        ev(AgentCreated(name="helper"), 1, "n1", "a1"),
        ev(
            EmbeddingComputed(model="e", dim=1, vector=b"\0\0\0\0", content_hash="h"), 1, "n1", "m1"
        ),
        ev(
            EmbeddingComputed(model="e", dim=1, vector=b"\0\0\x80?", content_hash="h"),
            2,
            "n2",
            "m1",
        ),
        ev(InteractionLogged(query="q", response="r"), 1, "n1", "i1"),
        ev(TaskRequested(kind="summarise"), 1, "n1", "t1"),
        ev(TaskAssigned(assignee="n2"), 2, "n1", "t1"),
        ev(TaskCompleted(result="ok"), 3, "n2", "t1"),
        ev(ObservationWritten(text="the room is warm"), 1, "n1", "o1"),
        ev(
            ReadingsAggregated(
                source="t", window_start=0, window_end=1, count=1, min=1, max=1, mean=1
            ),
            1,
            "n1",
            "r1",
        ),
        ev(AdapterPromoted(adapter="x"), 1, "n1", "x1"),
    ]


def _doc() -> DocumentIngested:
    return DocumentIngested(source="f.md", content_hash="h", size=10, total_chunks=2)


def _chunk(doc: str, index: int) -> dict[str, object]:
    return {
        "document": doc,
        "source": "f.md",
        "chunk_index": index,
        "total_chunks": 2,
        "text": f"chunk {index} about gardening",
        "content_hash": f"h{index}",
    }


EVENTS = event_mix()


WORDS = ("apples", "green", "yellow", "greeting", "hello", "resurrected", "garage", "gardening")


def searchable(store: ProjectionStore) -> tuple[object, ...]:
    """What keyword search sees (FTS indexes are left out of the digest, so compare them)."""
    for fts in ("memories_fts", "memories_forgotten_fts", "knowledge_fts"):
        store.connection.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 0)")
    return tuple(
        (
            sorted(h.id for h in store.search_memories(w)),
            sorted(h.id for h in store.search_memories(w, include_forgotten=True)),
            sorted(h.id for h in store.search_knowledge(w)),
        )
        for w in WORDS
    )


def digest_of(events: Sequence[Event], chunk: int = 7) -> str:
    return state_of(events, chunk)[0]


def state_of(events: Sequence[Event], chunk: int = 7) -> tuple[str, tuple[object, ...]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = ProjectionStore(Path(tmp) / "p.db")
        try:
            deliveries = [
                Delivery("HIVE" if i % 2 else "EVENTS", i + 1, encode(e), e.event_id)
                for i, e in enumerate(events)
            ]
            for start in range(0, len(deliveries), chunk):
                store.apply_batch(deliveries[start : start + chunk])
            return store.digest(), searchable(store)
        finally:
            store.close()


REFERENCE, SEARCHABLE = state_of(EVENTS, chunk=len(EVENTS))


def test_reference_state_is_what_the_rules_say() -> None:
    found = dict(zip(WORDS, SEARCHABLE, strict=True))
    assert found["green"] == (["m1"], ["m1"], [])  # edit_c "apples: green" is the newest
    assert found["yellow"] == ([], [], [])  # the losing concurrent edit is not the text
    assert found["resurrected"] == ([], ["m2"], [])  # forgotten: only with include_forgotten
    assert found["gardening"] == ([], [], ["c1"])  # c2 removed, c1 re-added after removal


@settings(max_examples=40, deadline=None)
@given(
    order=st.permutations(EVENTS),
    again=st.lists(st.sampled_from(EVENTS), max_size=12),
    chunk=st.integers(min_value=1, max_value=len(EVENTS)),
)
def test_any_order_and_duplication_gives_one_digest(
    order: list[Event], again: list[Event], chunk: int
) -> None:
    assert state_of([*order, *again], chunk) == (REFERENCE, SEARCHABLE)


def test_one_event_at_a_time_in_shuffled_orders() -> None:
    for seed in range(5):
        events = list(EVENTS)
        random.Random(seed).shuffle(events)
        assert state_of(events, chunk=1) == (REFERENCE, SEARCHABLE)


def test_a_different_set_gives_a_different_digest() -> None:
    for i in range(len(EVENTS)):
        assert digest_of(EVENTS[:i] + EVENTS[i + 1 :]) != REFERENCE


def test_apply_events_and_apply_batch_agree(tmp_path: Path) -> None:
    """The same events through apply_events (in reverse) and through apply_batch (as stream
    deliveries with their subjects, in small batches) give the reference digest."""
    direct = ProjectionStore(tmp_path / "direct.db")
    assert direct.apply_events(reversed(EVENTS)) == len(EVENTS)
    assert direct.digest() == REFERENCE
    direct.close()
    batched = ProjectionStore(tmp_path / "batched.db")
    deliveries = [
        Delivery("HIVE", i + 1, encode(e), e.event_id, subject(e)) for i, e in enumerate(EVENTS)
    ]
    batches = range(0, len(deliveries), 7)
    applied = sum(batched.apply_batch(deliveries[i : i + 7]).applied for i in batches)
    assert applied == len(EVENTS)
    assert batched.dead_letters() == []
    assert batched.position("HIVE") == len(EVENTS)
    assert batched.digest() == REFERENCE
    batched.close()


def test_reset_keeps_the_clock_and_replay_restores_the_digest(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.db")
    store.apply_events(EVENTS)
    clock = store.stats()["clock"]
    store.reset()
    stats = store.stats()
    assert stats["clock"] == clock == max(e.lamport for e in EVENTS)
    assert stats["applied"] == stats["memories"] == stats["memory_versions"] == 0
    assert store.search_memories("apples") == []
    assert store.digest() != REFERENCE
    store.apply_events(EVENTS)
    assert store.digest() == REFERENCE
    assert store.search_memories("green")[0].id == "m1"
    store.close()


def test_state_survives_reopening(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.db")
    store.apply_events(EVENTS)
    store.close()
    again = ProjectionStore(tmp_path / "p.db")
    assert again.digest() == REFERENCE
    again.close()
