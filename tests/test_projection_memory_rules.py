"""Merge rules of the memory projection, each checked in both arrival orders."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from hivebrain.events import Event, Payload, VersionRef
from hivebrain.events.device import DeviceRegistered
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
from hivebrain.projections import MemoryRow, ProjectionStore


def ev(
    payload: Payload, lamport: int, node: str = "n1", entity: str = "m1", eid: str = ""
) -> Event:
    return Event.new(payload, node=node, lamport=lamport, entity=entity, event_id=eid or None)


def edit(
    base: Event,
    text: str | None,
    lamport: int,
    node: str,
    tag: tuple[str, ...] = (),
    untag: tuple[TagRemoval, ...] = (),
) -> Event:
    payload = MemoryEdited(base=VersionRef.of(base.stamp), text=text, tag=tag, untag=untag)
    return ev(payload, lamport, node)


OpenStore = Callable[[], ProjectionStore]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[OpenStore]:
    opened: list[ProjectionStore] = []

    def open_store() -> ProjectionStore:
        store = ProjectionStore(tmp_path / f"p{len(opened)}.db")
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def in_every_order(stores: OpenStore, events: Sequence[Event], entity: str = "m1") -> MemoryRow:
    """Apply `events` in every order (one per batch); all must give one row; return it."""
    rows: list[MemoryRow | None] = []
    digests = set()
    for order in itertools.permutations(events):
        store = stores()
        for e in order:
            store.apply_events([e])
        rows.append(store.memory(entity))
        digests.add(store.digest())
    assert len(digests) == 1
    assert all(r == rows[0] for r in rows)
    first = rows[0]
    assert first is not None
    return first


def text_of(store: ProjectionStore, entity: str = "m1") -> str | None:
    row = store.memory(entity)
    assert row is not None
    return row.text


STORED = ev(MemoryStored(text="first text", tags=("a",)), 1)


def test_higher_stamp_wins_in_either_order(stores: OpenStore) -> None:
    late = edit(STORED, "later text", 5, "n1")
    early = edit(STORED, "earlier text", 3, "n9")
    row = in_every_order(stores, [STORED, late, early])
    assert row.text == "later text"
    assert row.version == late.stamp


def test_equal_lamport_is_broken_by_node_then_event_id(stores: OpenStore) -> None:
    by_node = in_every_order(
        stores, [STORED, edit(STORED, "from a", 4, "a"), edit(STORED, "from b", 4, "b")]
    )
    assert by_node.text == "from b"
    low = ev(MemoryMoved(space="archive"), 4, "n2", eid="0" * 32)
    high = ev(MemoryMoved(space="working"), 4, "n2", eid="f" * 32)
    assert in_every_order(stores, [STORED, high, low]).space == "working"


def test_stored_after_a_newer_edit_keeps_the_edit_text(stores: OpenStore) -> None:
    newer = edit(STORED, "edited before stored arrived", 2, "n2")
    row = in_every_order(stores, [newer, STORED])
    assert row.text == "edited before stored arrived"
    assert row.stored and row.agent == "default" and row.node == "n1"


def test_edit_after_forget_does_not_resurrect(stores: OpenStore) -> None:
    forget = ev(MemoryForgotten(reason="asked"), 3, "n2")
    row = in_every_order(stores, [STORED, forget, edit(STORED, "still here?", 9, "n3")])
    assert row.forgotten
    assert row.text == "still here?"


def test_restore_wins_only_above_the_tombstone(stores: OpenStore) -> None:
    forget = ev(MemoryForgotten(), 3, "n2")
    assert in_every_order(stores, [STORED, forget, ev(MemoryRestored(), 2, "n3")]).forgotten
    assert not in_every_order(stores, [STORED, forget, ev(MemoryRestored(), 4, "n3")]).forgotten


def test_forget_before_stored_converges(stores: OpenStore) -> None:
    row = in_every_order(stores, [ev(MemoryForgotten(), 2, "n2"), STORED])
    assert row.forgotten and row.text == "first text"


def test_concurrent_edits_on_one_base_are_a_conflict(stores: OpenStore) -> None:
    a = edit(STORED, "version a", 2, "n1")
    b = edit(STORED, "version b", 2, "n2")
    for order in ([STORED, a, b], [b, a, STORED]):
        store = stores()
        store.apply_events(order)
        (conflict,) = store.conflicts()
        assert conflict.memory == "m1"
        assert conflict.base == STORED.stamp
        assert conflict.winner.text == "version b"
        assert [v.text for v in conflict.losers] == ["version a"]
        assert text_of(store) == "version b"


def test_sequential_edits_are_no_conflict(stores: OpenStore) -> None:
    a = edit(STORED, "one", 2, "n1")
    store = stores()
    store.apply_events([STORED, a, edit(a, "two", 3, "n1")])
    assert store.conflicts() == []
    assert text_of(store) == "two"


def test_device_priority_prefers_the_stronger_device(stores: OpenStore) -> None:
    gpu = edit(STORED, "from the gpu box", 2, "big")
    pi = edit(STORED, "from the pi", 3, "pi")
    devices = [
        ev(DeviceRegistered(name="big", tier="gpu"), 1, "big", "big"),
        ev(DeviceRegistered(name="pi", tier="micro"), 1, "pi", "pi"),
    ]
    lww = stores()
    lww.apply_events([STORED, gpu, pi, *devices])
    assert text_of(lww) == "from the pi"
    store = ProjectionStore(lww.path, strategy="device-priority")
    try:
        (conflict,) = store.conflicts()
        assert conflict.winner.text == "from the gpu box"
        assert conflict.strategy == "device-priority"
        assert text_of(store) == "from the gpu box"
    finally:
        store.close()


def test_tags_are_an_add_wins_set(stores: OpenStore) -> None:
    remove = edit(STORED, None, 3, "n2", untag=(TagRemoval(tag="a", observed=(STORED.event_id,)),))
    concurrent_add = edit(STORED, None, 3, "n3", tag=("a", "b"))
    row = in_every_order(stores, [STORED, remove, concurrent_add])
    assert row.tags == ("a", "b")
    assert row.tag_events["a"] == (concurrent_add.event_id,)
    gone = in_every_order(stores, [STORED, remove])
    assert gone.tags == ()


def test_strength_is_an_exact_sum(stores: OpenStore) -> None:
    events = [STORED] + [ev(MemoryReinforced(amount=0.1), 2, f"n{i}") for i in range(3)]
    events.append(ev(MemoryDecayed(amount=0.3), 3, "n9"))
    row = in_every_order(stores, events[:3] + events[4:])
    assert row.strength == pytest.approx(-0.1)
    store = stores()
    store.apply_events(events)
    store.apply_events(events)  # duplicates never count twice
    total = store.memory("m1")
    assert total is not None and total.strength == 0.0


def test_unknown_memory_is_none(stores: OpenStore) -> None:
    assert stores().memory("nope") is None
