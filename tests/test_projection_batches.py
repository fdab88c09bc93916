"""Batches from streams: positions, idempotence, dead letters, and the clock store."""

from __future__ import annotations

import threading
from pathlib import Path

import msgpack
import pytest

from hivebrain.errors import OutOfTurn, ProjectionError
from hivebrain.events import Event, LamportClock, encode, to_wire
from hivebrain.events.memory import MemoryReinforced, MemoryStored
from hivebrain.projections import (
    Delivery,
    ProjectionStore,
    SqliteClockStore,
    connect,
    connect_async,
)


def stored(i: int, lamport: int = 1) -> Event:
    return Event.new(MemoryStored(text=f"memory number {i}"), node="n1", lamport=lamport)


def deliveries(events: list[Event], first_seq: int = 1, stream: str = "HIVE") -> list[Delivery]:
    return [Delivery(stream, first_seq + i, encode(e), e.event_id) for i, e in enumerate(events)]


def test_batch_twice_changes_nothing(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.db")
    batch = deliveries([stored(i, lamport=i + 1) for i in range(5)])
    first = store.apply_batch(batch)
    assert (first.applied, first.duplicates, first.dead, first.max_lamport) == (5, 0, 0, 5)
    digest = store.digest()
    again = store.apply_batch(batch)
    assert (again.applied, again.duplicates, again.dead) == (0, 0, 0)  # skipped by position
    assert store.digest() == digest
    assert store.position("HIVE") == 5
    store.close()


def test_a_batch_expecting_other_positions_writes_nothing(tmp_path: Path) -> None:
    """A batch handed over before the one in front of it committed names the positions that
    one leaves; if the store is not there (that batch failed), nothing of it is written."""
    store = ProjectionStore(tmp_path / "p.db")
    events = [stored(i, lamport=i + 1) for i in range(6)]
    first, second = deliveries(events[:3]), deliveries(events[3:], first_seq=4)
    with pytest.raises(OutOfTurn, match="expects"):
        store.apply_batch(second, expect={"HIVE": 3})  # the first batch never committed
    assert store.position("HIVE") == 0
    assert store.stats()["applied"] == 0
    assert store.apply_batch(first, expect={"HIVE": 0}).applied == 3
    assert store.apply_batch(second, expect={"HIVE": 3}).applied == 3
    assert store.position("HIVE") == 6
    # A stream the store has never seen is at 0; streams not named are not checked.
    assert (
        store.apply_batch(deliveries(events, stream="EVENTS"), expect={"EVENTS": 0}).duplicates == 6
    )


def test_same_event_on_two_streams_is_applied_once(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.db")
    events = [Event.new(MemoryReinforced(amount=0.5), node="n1", lamport=2, entity="m1")]
    assert store.apply_batch(deliveries(events, stream="EVENTS")).applied == 1
    result = store.apply_batch(deliveries(events, first_seq=40, stream="HIVE"))
    assert (result.applied, result.duplicates) == (0, 1)
    row = store.memory("m1")
    assert row is not None and row.strength == 0.5
    assert (store.position("EVENTS"), store.position("HIVE")) == (1, 40)
    store.close()


def test_only_deliveries_above_the_position_are_applied(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.db")
    events = [stored(i) for i in range(6)]
    store.apply_batch(deliveries(events[:3]))
    result = store.apply_batch(deliveries(events))  # seqs 1..6, 1..3 already seen
    assert result.applied == 3 and result.duplicates == 0
    assert store.stats()["memories"] == 6
    store.close()


def test_bad_messages_become_dead_letters(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.db")
    good = stored(1)
    unknown = to_wire(stored(2)) | {"type": "memory.teleported"}
    wrong = to_wire(stored(3))
    wrong["payload"] = {"text": "x", "confidence": 7}
    batch = [
        Delivery("HIVE", 1, b"\xc1garbage", None),
        Delivery("HIVE", 2, encode(good), good.event_id),
        Delivery("HIVE", 3, msgpack.packb(unknown), "u1"),
        Delivery("HIVE", 4, msgpack.packb(wrong), "w1"),
    ]
    result = store.apply_batch(batch)
    assert (result.applied, result.dead) == (1, 3)
    assert store.position("HIVE") == 4
    letters = {d.seq: d for d in store.dead_letters()}
    assert sorted(letters) == [1, 3, 4]
    assert letters[1].reason.startswith("not msgpack")
    assert "memory.teleported" in letters[3].reason
    assert "confidence" in letters[4].reason and letters[4].msg_id == "w1"
    assert letters[1].data == b"\xc1garbage"
    assert store.memory(good.entity) is not None
    assert store.stats()["dead_letters"] == 3
    store.close()


def test_clock_follows_applied_events_and_survives_reset(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.db")
    store.apply_batch(deliveries([stored(1, lamport=41), stored(2, lamport=7)]))
    clock = SqliteClockStore(tmp_path / "p.db")
    assert clock.high == 41
    assert clock.reserve(0, 10) == 42
    store.reset()
    assert store.stats()["clock"] == 51
    assert store.position("HIVE") == 0
    store.close()
    clock.close()


def test_reserve_and_observe(tmp_path: Path) -> None:
    clock = SqliteClockStore(tmp_path / "c.db")
    assert clock.reserve(0, 5) == 1  # 1..5
    assert clock.reserve(0, 5) == 6  # 6..10
    assert clock.reserve(100, 1) == 101
    clock.observe(50)  # lower: no change
    assert clock.high == 101
    clock.observe(500)
    assert clock.reserve(0, 2) == 501
    with pytest.raises(ValueError):
        clock.reserve(0, 0)
    clock.close()


def test_two_clock_stores_never_overlap(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    got: list[list[int]] = [[], []]

    def tick(k: int) -> None:
        store = SqliteClockStore(path)
        clock = LamportClock(store, block=3)
        got[k] = [clock.tick() for _ in range(300)]
        store.close()

    SqliteClockStore(path).close()
    threads = [threading.Thread(target=tick, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got[0]) | set(got[1])) == 600


def test_unusable_file_is_a_projection_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-db").write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(ProjectionError):
        ProjectionStore(tmp_path / "not-a-db")
    with pytest.raises(ProjectionError):
        connect(tmp_path / "a-dir-not-a-file" / ".." / "..")


def test_connection_settings(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 0
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert conn.isolation_level is None
    conn.close()


async def test_async_connection_reads_the_same_file(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.db")
    store.apply_events([stored(1)])
    async with connect_async(tmp_path / "p.db") as conn:
        cursor = await conn.execute("SELECT count(*) FROM memories")
        row = await cursor.fetchone()
    assert row is not None and row[0] == 1
    store.close()


def test_batches_left_unfinished_are_indexed_by_finish_pending(tmp_path: Path) -> None:
    """A replay applies batches with `finish=False` and indexes keywords once at its end."""
    store = ProjectionStore(tmp_path / "p.db")
    events = [
        Event.new(MemoryStored(text=f"pump number {i}"), node="n1", lamport=i + 1) for i in range(3)
    ]
    store.apply_batch(deliveries(events[:2]), finish=False)
    assert store.search_memories("pump", all_agents=True) == []
    digest = store.digest()
    store.finish_pending()
    assert len(store.search_memories("pump", all_agents=True)) == 2
    assert store.digest() == digest  # the index is derived: not part of the state
    store.finish_pending()  # nothing left: changes nothing
    store.apply_batch(deliveries(events[2:], first_seq=3))
    assert len(store.search_memories("pump", all_agents=True)) == 3


def test_a_replay_checkpoints_once_at_its_end(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.db")
    wal = tmp_path / "p.db-wal"
    store.begin_replay()
    for first in range(0, 60, 20):
        batch = [stored(i, lamport=i + 1) for i in range(first, first + 20)]
        store.apply_batch(deliveries(batch, first_seq=first + 1), finish=False)
    assert wal.stat().st_size > 0
    store.end_replay()
    assert wal.stat().st_size == 0  # checkpointed into the database file and truncated
    assert len(store.search_memories("memory", all_agents=True, limit=100)) == 60
    assert store.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    store.close()
