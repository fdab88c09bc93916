"""Apply rules of the non-memory families, read back from their tables."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

from hivebrain.events import Event, Payload
from hivebrain.events.device import DeviceRegistered, DeviceStatusChanged, DeviceUpdated
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.interaction import InteractionLogged
from hivebrain.events.task import TaskAssigned, TaskCompleted, TaskRequested
from hivebrain.projections import ProjectionStore


def ev(payload: Payload, lamport: int, entity: str, node: str = "n1") -> Event:
    return Event.new(payload, node=node, lamport=lamport, entity=entity)


def rows_in_every_order(
    tmp_path: Path, events: Sequence[Event], sql: str
) -> list[tuple[object, ...]]:
    results = []
    for k, order in enumerate(itertools.permutations(events)):
        store = ProjectionStore(tmp_path / f"{k}.db")
        for e in order:
            store.apply_events([e])
        results.append(store.connection.execute(sql).fetchall())
        store.close()
    assert all(r == results[0] for r in results)
    return results[0]


def test_device_fields_are_separate_registers(tmp_path: Path) -> None:
    events = [
        ev(DeviceRegistered(name="pi", tier="edge", cores=4, ram_mb=1024), 5, "pi"),
        ev(DeviceUpdated(tier="micro"), 6, "pi", "hub"),
        ev(DeviceUpdated(ram_mb=4096, tier=None), 3, "pi", "hub"),  # older: loses to register
        ev(DeviceStatusChanged(status="offline"), 2, "pi", "hub"),
    ]
    rows = rows_in_every_order(tmp_path, events, "SELECT field, value FROM devices ORDER BY field")
    fields = {f: json.loads(str(v)) for f, v in rows}
    assert (fields["tier"], fields["cores"], fields["ram_mb"]) == ("micro", 4, 1024)
    assert fields["status"] == "offline" and fields["name"] == "pi"


def test_task_status_is_last_writer_wins(tmp_path: Path) -> None:
    events = [
        ev(TaskRequested(kind="embed"), 1, "t1"),
        ev(TaskAssigned(assignee="gpu"), 2, "t1"),
        ev(TaskCompleted(status="failed", result="oom"), 3, "t1", "gpu"),
    ]
    rows = rows_in_every_order(
        tmp_path, events, "SELECT kind, assignee, status, result, requested_by FROM tasks"
    )
    assert rows == [("embed", "gpu", "failed", "oom", "n1")]


def test_embedding_per_entity_and_model(tmp_path: Path) -> None:
    def emb(model: str, vector: bytes, lamport: int) -> Event:
        payload = EmbeddingComputed(model=model, dim=1, vector=vector, content_hash="h")
        return ev(payload, lamport, "m1")

    events = [emb("a", b"\0\0\0\0", 1), emb("a", b"\0\0\x80?", 2), emb("b", b"\0\0\0@", 1)]
    rows = rows_in_every_order(
        tmp_path, events, "SELECT model, vector FROM embeddings ORDER BY model"
    )
    assert rows == [("a", b"\0\0\x80?"), ("b", b"\0\0\0@")]


def test_interactions_are_one_row_each(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.db")
    events = [ev(InteractionLogged(query=f"q{i}", outcome="success"), 1, "s1") for i in range(3)]
    store.apply_events(events)
    store.apply_events(events)
    assert store.stats()["interactions"] == 3
    store.close()
