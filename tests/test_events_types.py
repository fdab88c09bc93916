"""Event types: the registry, the envelope's checks, every payload model's rules, describe()."""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from strategies import PAYLOADS, events, payloads

from hivebrain.errors import EventError, InvalidEvent, UnknownEventType
from hivebrain.events import (
    Event,
    Payload,
    Stamp,
    VersionRef,
    all_types,
    event_type,
    new_id,
    payload_class,
    registry,
)
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.knowledge import ChunkAdded
from hivebrain.events.memory import MemoryEdited, MemoryStored, TagRemoval
from hivebrain.events.observation import ReadingsAggregated
from hivebrain.events.training import AdapterTrained

TYPE_NAMES = sorted(all_types())
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def stored(**fields: Any) -> MemoryStored:
    return MemoryStored(**({"text": "the kettle is in the left cupboard"} | fields))


# -- the strategies cover the registry ---------------------------------------------------------


def test_every_registered_type_has_a_strategy() -> None:
    missing = set(all_types()) - set(PAYLOADS)
    assert not missing, f"add a strategy to tests/strategies.py for: {sorted(missing)}"
    assert set(PAYLOADS) == set(all_types()), "tests/strategies.py names an unregistered type"


@pytest.mark.parametrize("name", TYPE_NAMES)
@FEW
@given(data=st.data())
def test_strategy_builds_its_type(name: str, data: st.DataObject) -> None:
    payload = data.draw(PAYLOADS[name])
    assert type(payload) is all_types()[name]
    assert type(payload).model_validate(payload.model_dump()) == payload


def test_payloads_rejects_a_type_without_strategy() -> None:
    with pytest.raises(ValueError, match=r"no payload strategy for nope\.nothing"):
        payloads("nope.nothing")


@FEW
@given(event=events(node="kitchen-pi", entity="fridge"))
def test_events_strategy_pins_node_and_entity(event: Event) -> None:
    assert (event.node, event.entity) == ("kitchen-pi", "fridge")
    assert event.type in all_types()


# -- registry ----------------------------------------------------------------------------------


def test_all_types_names_match_classes_and_family_modules() -> None:
    types = all_types()
    assert list(types) == sorted(types)
    for name, cls in types.items():
        family, verb = name.split(".")
        assert name == cls.TYPE
        assert verb
        assert cls.__module__.rsplit(".", 1)[-1] == family
        assert cls.VERSION >= 1
        assert payload_class(name) is cls


def test_all_types_is_a_copy() -> None:
    all_types().clear()
    assert "memory.stored" in all_types()


def test_unknown_type_is_refused() -> None:
    with pytest.raises(UnknownEventType, match=r"unknown event type 'memory\.nope'"):
        payload_class("memory.nope")


def test_registering_a_second_class_under_a_type_raises() -> None:
    class Impostor(Payload):
        TYPE = "memory.stored"

        text: str

    with pytest.raises(ValueError, match=r"'memory\.stored' registered twice"):
        event_type(Impostor)
    assert payload_class("memory.stored") is MemoryStored


def test_registering_the_same_class_again_is_harmless() -> None:
    assert event_type(MemoryStored) is MemoryStored
    assert payload_class("memory.stored") is MemoryStored


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by the test are dropped afterwards."""
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))


def _payload_class(type_name: str) -> type[Payload]:
    return type("Odd", (Payload,), {"TYPE": type_name, "__annotations__": {}})


@pytest.mark.usefixtures("scratch_registry")
@pytest.mark.parametrize(
    "name",
    [
        "",
        "stored",
        "memory.stored.again",
        ".",
        "memory.",
        ".stored",
    ],
)
def test_type_must_look_like_family_dot_verb(name: str) -> None:
    with pytest.raises(ValueError, match=r"Odd\.TYPE must look like 'family\.verb'"):
        event_type(_payload_class(name))
    assert name not in all_types()


# -- the envelope ------------------------------------------------------------------------------


def test_new_fills_ids_and_time() -> None:
    event = Event.new(stored(), node="kitchen-pi", lamport=7)
    assert len(event.event_id) == 32
    assert len(event.entity) == 32
    assert event.event_id != event.entity
    assert event.ts > 1_600_000_000
    assert (event.type, event.v, event.family) == ("memory.stored", 2, "memory")
    assert event.stamp == Stamp(7, "kitchen-pi", event.event_id)


def test_new_id_is_unique_hex() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_ts_is_not_part_of_equality() -> None:
    a = Event.new(stored(), node="n1", lamport=1, entity="m1", event_id="e1", ts=1.0)
    b = Event.new(stored(), node="n1", lamport=1, entity="m1", event_id="e1", ts=2.0)
    assert a == b
    assert a != Event.new(stored(), node="n1", lamport=2, entity="m1", event_id="e1", ts=1.0)


def test_event_is_immutable() -> None:
    event = Event.new(stored(), node="n1", lamport=1)
    with pytest.raises(AttributeError):
        event.lamport = 2  # type: ignore[misc]
    with pytest.raises(ValidationError):
        event.payload.text = "other"  # type: ignore[attr-defined]


def test_stamps_order_by_lamport_then_node_then_id() -> None:
    stamps = [Stamp(2, "a", "0"), Stamp(1, "b", "0"), Stamp(1, "a", "9"), Stamp(1, "a", "1")]
    assert sorted(stamps) == [
        Stamp(1, "a", "1"),
        Stamp(1, "a", "9"),
        Stamp(1, "b", "0"),
        Stamp(2, "a", "0"),
    ]


def test_version_ref_round_trips_a_stamp() -> None:
    stamp = Stamp(42, "garage", "abc")
    assert VersionRef.of(stamp).stamp() == stamp


@pytest.mark.parametrize(
    "node",
    [
        "",
        "has.dot",
        "has space",
        "wild*",
        "tail>",
        ">",
        "Upper",
        "-leading",
        "_leading",
        "é",
        "a" * 64,
    ],
)
def test_new_refuses_a_node_that_is_not_a_subject_token(node: str) -> None:
    with pytest.raises(InvalidEvent, match=r"node name .* must be lowercase letters, digits"):
        Event.new(stored(), node=node, lamport=1)


@pytest.mark.parametrize(
    "entity", ["has.dot", "has space", "*", ">", "a>b", "tab\there", "x" * 129]
)
def test_new_refuses_an_entity_that_is_not_a_subject_token(entity: str) -> None:
    with pytest.raises(InvalidEvent, match=r"entity .* must be 1-128 letters, digits"):
        Event.new(stored(), node="n1", lamport=1, entity=entity)


def test_new_accepts_the_edges_of_the_token_rules() -> None:
    event = Event.new(stored(), node="a" * 63, lamport=1, entity="Doc:chunk_7-" + "x" * 116)
    assert len(event.entity) == 128


def test_new_refuses_a_bad_event_id() -> None:
    with pytest.raises(InvalidEvent, match=r"event_id 'a\.b' is not a valid id"):
        Event.new(stored(), node="n1", lamport=1, event_id="a.b")


@pytest.mark.parametrize("lamport", [0, -1])
def test_new_refuses_lamport_below_one(lamport: int) -> None:
    with pytest.raises(InvalidEvent, match=rf"lamport must be >= 1, got {lamport}"):
        Event.new(stored(), node="n1", lamport=lamport)


def test_new_refuses_an_unregistered_payload() -> None:
    class Loose(Payload):
        note: str

    with pytest.raises(InvalidEvent, match="Loose is not a registered event type"):
        Event.new(Loose(note="x"), node="n1", lamport=1)


@pytest.mark.parametrize("field", ["node", "entity", "event_id"])
def test_new_refuses_a_trailing_newline(field: str) -> None:
    fields = {"node": "n1", "entity": "m1", "event_id": "e1"} | {field: "ok\n"}
    with pytest.raises(InvalidEvent):
        Event.new(
            stored(),
            node=fields["node"],
            lamport=1,
            entity=fields["entity"],
            event_id=fields["event_id"],
        )


def test_new_refuses_a_bool_lamport() -> None:
    with pytest.raises(InvalidEvent, match="lamport"):
        Event.new(stored(), node="n1", lamport=True)


# -- describe() --------------------------------------------------------------------------------


def _describe_is_json(event: Event) -> None:
    described = event.describe()
    assert json.loads(json.dumps(described, allow_nan=False)) == described
    assert {k: described[k] for k in ("event_id", "type", "v", "node", "lamport", "entity")} == {
        "event_id": event.event_id,
        "type": event.type,
        "v": event.v,
        "node": event.node,
        "lamport": event.lamport,
        "entity": event.entity,
    }
    assert described["ts"] == event.ts
    assert set(described["payload"]) == set(type(event.payload).model_fields)
    payload_json = json.dumps(described["payload"])
    assert type(event.payload).model_validate_json(payload_json) == event.payload


@pytest.mark.parametrize("name", TYPE_NAMES)
@FEW
@given(data=st.data())
def test_describe_is_json_for_every_type(name: str, data: st.DataObject) -> None:
    _describe_is_json(data.draw(events(payload=PAYLOADS[name])))


def test_describe_carries_an_embedding_vector_as_base64() -> None:
    vector = struct.pack("<3f", 1.0, -0.5, 0.25)
    payload = EmbeddingComputed(model="nomic-embed-text", dim=3, vector=vector, content_hash="ab")
    described = Event.new(payload, node="n1", lamport=1).describe()
    json.dumps(described)
    assert base64.urlsafe_b64decode(described["payload"]["vector"]) == vector


# -- payload rules -----------------------------------------------------------------------------


def test_payloads_are_frozen_and_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        MemoryStored(text="x", colour="blue")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="frozen"):
        stored().space = "archive"  # type: ignore[misc]


def test_memory_is_text_or_a_conversation_turn() -> None:
    assert stored().content() == "the kettle is in the left cupboard"
    turn = MemoryStored(user_message="where is the kettle?", response="left cupboard")
    assert turn.content() == "where is the kettle?\nleft cupboard"
    assert (turn.space, turn.agent, turn.confidence, turn.tags) == ("long_term", "default", 1.0, ())
    for fields in (
        {},
        {"user_message": "q"},
        {"response": "r"},
        {"user_message": "", "response": "r"},
    ):
        with pytest.raises(ValidationError, match="needs text, or both user_message and response"):
            MemoryStored(**fields)
    with pytest.raises(ValidationError, match="at least 1 character"):
        MemoryStored(text="")


@pytest.mark.parametrize(
    "fields",
    [
        {"confidence": 1.5},
        {"confidence": -0.1},
        {"space": "attic"},
        {"agent": ""},
        {"agent": "a" * 129},
    ],
)
def test_memory_stored_field_bounds(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        stored(**fields)


@pytest.mark.parametrize("tag", ["", "two words", "a,b", "x" * 65])
def test_memory_tags_follow_the_tag_rule(tag: str) -> None:
    with pytest.raises(ValidationError):
        stored(tags=(tag,))
    with pytest.raises(ValidationError):
        MemoryEdited(base=VersionRef(lamport=1, node="n1", event_id="e1"), tag=(tag,))
    with pytest.raises(ValidationError):
        MemoryEdited(
            base=VersionRef(lamport=1, node="n1", event_id="e1"),
            untag=(TagRemoval(tag=tag, observed=()),),
        )


def test_readings_must_be_ordered() -> None:
    fields: dict[str, Any] = {
        "source": "sensor-1",
        "window_start": 10.0,
        "window_end": 20.0,
        "count": 3,
        "min": 1.0,
        "max": 3.0,
        "mean": 2.0,
    }
    assert ReadingsAggregated(**fields).unit == ""
    with pytest.raises(ValidationError, match="window_end is before window_start"):
        ReadingsAggregated(**(fields | {"window_end": 9.0}))
    with pytest.raises(ValidationError, match="mean must lie between min and max"):
        ReadingsAggregated(**(fields | {"mean": 3.5}))
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        ReadingsAggregated(**(fields | {"count": 0}))


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_payload_floats_must_be_finite(value: float) -> None:
    with pytest.raises(ValidationError):
        ReadingsAggregated(
            source="s", window_start=value, window_end=20.0, count=1, min=1.0, max=1.0, mean=1.0
        )
    with pytest.raises(ValidationError):
        AdapterTrained(base_model="m", dataset="d", object_name="o", metrics={"loss": value})


def test_embedding_vector_is_dim_float32s() -> None:
    ok = EmbeddingComputed(model="m", dim=2, vector=bytes(8), content_hash="h")
    assert ok.dim == 2
    with pytest.raises(ValidationError, match="vector has 7 bytes, expected 8"):
        EmbeddingComputed(model="m", dim=2, vector=bytes(7), content_hash="h")
    with pytest.raises(ValidationError):
        EmbeddingComputed(model="m", dim=0, vector=b"", content_hash="h")


def test_chunk_position_is_one_based() -> None:
    chunk = ChunkAdded(
        document="d1", source="notes.md", chunk_index=0, total_chunks=3, text="t", content_hash="h"
    )
    assert chunk.position == "1/3"
    with pytest.raises(ValidationError):
        ChunkAdded(
            document="d1", source="s", chunk_index=-1, total_chunks=3, text="t", content_hash="h"
        )


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("memory.reinforced", {"amount": 0.0}),
        ("memory.decayed", {"amount": 1000.5}),
        ("memory.moved", {"space": "nowhere"}),
        ("device.registered", {"name": "pi", "cores": -1}),
        ("device.registered", {"name": "pi", "tier": "mainframe"}),
        ("device.status_changed", {"status": "asleep"}),
        (
            "knowledge.document_ingested",
            {"source": "s", "content_hash": "", "size": 0, "total_chunks": 0},
        ),
        ("interaction.logged", {"query": "q", "latency_ms": -1.0}),
        ("interaction.logged", {"query": "q", "outcome": "meh"}),
        ("agent.created", {"name": ""}),
        (
            "training.dataset_exported",
            {"train_count": -1, "validation_count": 0, "content_hash": "h", "object_name": "o"},
        ),
        ("task.completed", {"status": "maybe"}),
        ("task.assigned", {"assignee": ""}),
    ],
)
def test_payload_constraints(name: str, fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        payload_class(name).model_validate(fields)


def test_event_error_tree() -> None:
    assert issubclass(InvalidEvent, EventError)
    assert issubclass(UnknownEventType, EventError)


def test_new_ids_are_unique_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from hivebrain.events.envelope import TOKEN_RE, new_id

    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: [new_id() for _ in range(5000)], range(4)))
    ids = [i for batch in batches for i in batch]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and TOKEN_RE.fullmatch(i) for i in ids)
