"""The codec (msgpack round trips, upcasting, refusal of bad input) and the subject scheme."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import PAYLOADS, events

from hivebrain.errors import EventError, InvalidEvent, UnknownEventType
from hivebrain.events import (
    Event,
    Payload,
    all_types,
    decode,
    encode,
    event_type,
    from_wire,
    registry,
    subjects,
    to_wire,
    upcaster,
)
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.knowledge import DocumentIngested
from hivebrain.events.memory import MemoryStored

TYPE_NAMES = sorted(all_types())
FEW = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENVELOPE = ("event_id", "type", "v", "node", "lamport", "ts", "entity", "payload")


def an_event(**envelope: Any) -> Event:
    fields: dict[str, Any] = {"node": "kitchen-pi", "lamport": 3, "entity": "m1", "ts": 1.5}
    return Event.new(MemoryStored(text="milk is low", tags=("shopping",)), **(fields | envelope))


def a_wire(**changes: Any) -> dict[str, Any]:
    return to_wire(an_event()) | changes


def pack(wire: Any) -> bytes:
    data: bytes = msgpack.packb(wire, use_bin_type=True)
    return data


def refused(data: bytes, error: type[EventError] = InvalidEvent) -> str:
    """Decode `data`, expecting `error`; return its message."""
    with pytest.raises(error) as caught:
        decode(data)
    assert type(caught.value) is error
    return str(caught.value)


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TYPE_NAMES)
@FEW
@given(data=st.data())
def test_round_trip_for_every_type(name: str, data: st.DataObject) -> None:
    event = data.draw(events(payload=PAYLOADS[name]))
    decoded = decode(encode(event))
    assert decoded == event
    assert decoded.ts == event.ts
    assert type(decoded.payload) is type(event.payload)
    assert from_wire(to_wire(event)) == event


@FEW
@given(event=events())
def test_wire_is_a_plain_map_of_the_envelope(event: Event) -> None:
    wire = msgpack.unpackb(encode(event), raw=False)
    assert tuple(wire) == ENVELOPE
    assert (wire["type"], wire["v"], wire["node"], wire["lamport"]) == (
        event.type,
        event.v,
        event.node,
        event.lamport,
    )
    assert set(wire["payload"]) == set(type(event.payload).model_fields)


def test_encode_is_deterministic() -> None:
    event = an_event()
    assert encode(event) == encode(event)
    assert decode(encode(event)).payload == event.payload


def test_bytes_travel_as_msgpack_bin() -> None:
    payload = EmbeddingComputed(model="m", dim=1, vector=b"\x00\x00\x80?", content_hash="h")
    wire = msgpack.unpackb(encode(Event.new(payload, node="n1", lamport=1)), raw=False)
    assert wire["payload"]["vector"] == b"\x00\x00\x80?"


def test_integer_timestamps_are_accepted() -> None:
    event = decode(pack(a_wire(ts=1700000000)))
    assert event.ts == 1700000000.0
    assert isinstance(event.ts, float)


@pytest.mark.parametrize("where", ["lamport", "payload"])
def test_out_of_range_integers_are_an_event_error(where: str) -> None:
    huge = 2**64
    with pytest.raises(EventError):
        if where == "lamport":
            encode(an_event(lamport=huge))
        else:
            payload = DocumentIngested(source="s", content_hash="h", size=huge, total_chunks=0)
            encode(Event.new(payload, node="n1", lamport=1))


# -- upcasting ---------------------------------------------------------------------------------


def test_memory_stored_v1_is_upcast_to_v2() -> None:
    v1 = {"content": "the boiler code is 4471", "memory_type": "working_memory", "agent": "ops"}
    event = decode(pack(a_wire(v=1, payload=v1)))
    assert event.v == 2
    assert event.payload == MemoryStored(
        text="the boiler code is 4471", space="working", agent="ops"
    )


def test_memory_stored_v1_defaults_to_long_term_and_drops_metadata() -> None:
    v1 = {"content": "x", "metadata": {"origin": "firestore"}}
    payload = decode(pack(a_wire(v=1, payload=v1))).payload
    assert isinstance(payload, MemoryStored)
    assert (payload.text, payload.space) == ("x", "long_term")


def test_memory_stored_v1_with_an_unknown_memory_type_is_refused() -> None:
    v1 = {"content": "x", "memory_type": "episodic_memory"}
    message = refused(pack(a_wire(v=1, payload=v1)))
    assert message.startswith("memory.stored: space:")


def test_a_newer_version_is_refused() -> None:
    message = refused(pack(a_wire(v=3)))
    assert message == "memory.stored v3 is newer than this node understands (v2)"


def test_a_version_without_upcaster_is_refused() -> None:
    message = refused(pack(a_wire(v=0)))
    assert message == "no upcaster for memory.stored from v0"


@pytest.fixture
def widget(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Payload]]:
    """A v3 type registered in a scratch registry, upcast 1 -> 2 only (2 -> 3 left to the test)."""
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))
    monkeypatch.setattr(registry, "_UPCASTERS", dict(registry._UPCASTERS))

    @event_type
    class Widget(Payload):
        TYPE = "test.widget"
        VERSION = 3

        name: str
        size: int = 0

    @upcaster("test.widget", 1)
    def _title_to_label(old: dict[str, Any]) -> dict[str, Any]:
        return {"label": old["title"]} | {k: v for k, v in old.items() if k != "title"}

    yield Widget


def test_upcasters_apply_in_sequence(widget: type[Payload]) -> None:
    @upcaster("test.widget", 2)
    def _label_to_name(old: dict[str, Any]) -> dict[str, Any]:
        return {"name": old["label"]} | {k: v for k, v in old.items() if k != "label"}

    wire = a_wire(type="test.widget", v=1, payload={"title": "cog", "size": 4})
    assert decode(pack(wire)).payload == widget.model_validate({"name": "cog", "size": 4})
    wire = a_wire(type="test.widget", v=2, payload={"label": "cog"})
    assert decode(pack(wire)).payload == widget.model_validate({"name": "cog"})
    wire = a_wire(type="test.widget", v=3, payload={"name": "cog"})
    assert decode(pack(wire)).payload == widget.model_validate({"name": "cog"})


@pytest.mark.usefixtures("widget")
def test_a_gap_in_the_upcaster_chain_is_refused() -> None:
    wire = a_wire(type="test.widget", v=1, payload={"title": "cog"})
    assert refused(pack(wire)) == "no upcaster for test.widget from v2"


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc1", b"\x81", b"\x92\x01", b"\xa3ab", b"\x81\xa1a\xa2\xff\xfe"],
    ids=["empty", "reserved", "truncated-map", "truncated-array", "truncated-str", "bad-utf8"],
)
def test_garbage_is_refused(data: bytes) -> None:
    assert refused(data).startswith("not msgpack: ")


def test_trailing_bytes_are_refused() -> None:
    assert refused(encode(an_event()) + b"\x00").startswith("not msgpack: ExtraData")


def test_non_str_map_keys_are_refused() -> None:
    assert refused(pack({1: "x"})).startswith("not msgpack: ")


@pytest.mark.parametrize(
    ("wire", "kind"),
    [([1, 2], "list"), (7, "int"), ("memory.stored", "str"), (None, "NoneType"), (b"x", "bytes")],
)
def test_a_non_map_is_refused(wire: Any, kind: str) -> None:
    assert refused(pack(wire)) == f"event must be a map, got {kind}"


@pytest.mark.parametrize("name", ENVELOPE)
def test_a_missing_envelope_field_is_refused(name: str) -> None:
    wire = a_wire()
    del wire[name]
    assert refused(pack(wire)) == f"envelope field {name!r} is missing"
    assert refused(pack(wire | {name: None})) == f"envelope field {name!r} is missing"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("event_id", 12),
        ("type", b"memory.stored"),
        ("v", "2"),
        ("v", 2.0),
        ("v", True),
        ("node", ["kitchen-pi"]),
        ("lamport", "3"),
        ("lamport", 3.0),
        ("lamport", True),
        ("lamport", False),
        ("ts", "yesterday"),
        ("ts", True),
        ("entity", 1),
        ("payload", ["milk"]),
        ("payload", "milk"),
    ],
)
def test_an_envelope_field_of_the_wrong_type_is_refused(name: str, value: Any) -> None:
    assert refused(pack(a_wire(**{name: value}))) == f"envelope field {name!r} has the wrong type"


def test_unknown_envelope_fields_are_refused() -> None:
    wire = a_wire(priority=1, color="red")
    assert refused(pack(wire)) == "unknown envelope fields: color, priority"


def test_an_unknown_type_is_refused() -> None:
    message = refused(pack(a_wire(type="memory.teleported")), UnknownEventType)
    assert message == "unknown event type 'memory.teleported'"


def test_a_payload_failing_validation_names_type_field_and_reason() -> None:
    wire = a_wire(payload={"text": "x", "confidence": 7})
    assert refused(pack(wire)) == (
        "memory.stored: confidence: Input should be less than or equal to 1"
    )


def test_a_payload_failing_its_model_rule_says_why() -> None:
    message = refused(pack(a_wire(payload={"user_message": "hi"})))
    assert message.startswith("memory.stored: payload: Value error, a memory needs text")


def test_an_extra_payload_field_is_refused() -> None:
    wire = a_wire(payload={"text": "x", "mood": "happy"})
    assert refused(pack(wire)) == "memory.stored: mood: Extra inputs are not permitted"


def test_a_missing_payload_field_is_refused() -> None:
    wire = a_wire(type="agent.created", v=1, payload={"description": "helper"})
    assert refused(pack(wire)) == "agent.created: name: Field required"


def test_a_nested_payload_error_names_its_path() -> None:
    base = {"lamport": "soon", "node": "n1", "event_id": "e1"}
    wire = a_wire(type="memory.edited", v=1, payload={"base": base, "text": "y"})
    assert refused(pack(wire)).startswith("memory.edited: base.lamport: ")


def test_a_bytes_payload_key_is_refused() -> None:
    wire = a_wire(payload={"text": "x", b"tags": []})
    assert refused(pack(wire)) == "memory.stored: b'tags': Keys should be strings"


@pytest.mark.parametrize("node", ["has.dot", "has space", "tail>", "*", "Upper", ""])
def test_a_node_that_is_not_a_subject_token_is_refused(node: str) -> None:
    assert refused(pack(a_wire(node=node))).startswith(f"node name {node!r} must be lowercase")


@pytest.mark.parametrize("entity", ["has.dot", "has space", ">", "a*", ""])
def test_an_entity_that_is_not_a_subject_token_is_refused(entity: str) -> None:
    message = refused(pack(a_wire(entity=entity)))
    assert message.startswith(f"entity {entity!r} must be 1-128 letters")


def test_a_bad_event_id_is_refused() -> None:
    assert refused(pack(a_wire(event_id="a b"))) == "event_id 'a b' is not a valid id"


@pytest.mark.parametrize("lamport", [0, -5])
def test_a_lamport_below_one_is_refused(lamport: int) -> None:
    assert refused(pack(a_wire(lamport=lamport))) == f"lamport must be >= 1, got {lamport}"


def test_decode_refuses_what_is_not_bytes() -> None:
    with pytest.raises(InvalidEvent, match="not msgpack"):
        decode("not bytes")  # type: ignore[arg-type]


# -- subjects and headers ----------------------------------------------------------------------


@FEW
@given(event=events())
def test_subject_is_root_node_family_entity(event: Event) -> None:
    subject = subjects.subject(event)
    assert subject.split(".") == ["hive", event.node, event.type.split(".")[0], event.entity]
    assert not set(subject) & set(" \t\r\n*>")


@FEW
@given(event=events())
def test_headers_are_readable_strings(event: Event) -> None:
    headers = subjects.headers(event)
    assert headers == {
        "Nats-Msg-Id": event.event_id,
        "Hive-Type": event.type,
        "Hive-Node": event.node,
        "Hive-Lamport": str(event.lamport),
        "Content-Type": "application/msgpack",
    }
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())


def test_subject_of_a_known_event() -> None:
    event = an_event(entity="doc:42")
    assert subjects.subject(event) == "hive.kitchen-pi.memory.doc:42"
    assert subjects.headers(event)["Hive-Lamport"] == "3"


def test_node_subjects_match_every_subject_of_the_node() -> None:
    assert subjects.node_subjects("kitchen-pi") == "hive.kitchen-pi.>"
    prefix = subjects.node_subjects("kitchen-pi").removesuffix(">")
    assert subjects.subject(an_event()).startswith(prefix)
