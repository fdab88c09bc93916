"""Bad data never stops a consumer: messages that cannot be decoded or validated are dead-lettered
with their reason, the node moves past them and applies what follows, and a restart neither
dead-letters them again nor re-applies anything."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgpack
from nodeproc import Cli

from hivebrain.events import Event, encode, to_wire
from hivebrain.events.knowledge import DocumentIngested
from hivebrain.events.memory import MemoryStored
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM, subject
from hivebrain.node.node import Node

SUBJECT = "hive.n1.memory.x"


def bad_messages() -> list[tuple[bytes, str]]:
    """(body, what its dead-letter reason must mention)."""
    good = to_wire(Event.new(MemoryStored(text="fine"), node="n1", lamport=1))
    unknown = {**good, "event_id": "e-unknown", "type": "memory.teleported", "payload": {}}
    invalid = {
        **good,
        "event_id": "e-invalid",
        "payload": {**good["payload"], "confidence": 5.0},
    }
    return [
        (b"\xc1 this is not msgpack", "not msgpack"),
        (msgpack.packb(unknown), "unknown event type 'memory.teleported'"),
        (msgpack.packb(invalid), "confidence"),
        (msgpack.packb([1, 2, 3]), "must be a map"),
    ]


async def test_bad_messages_are_dead_lettered_and_skipped(node: Node, tmp_path: Path) -> None:
    assert node.bus is not None and node.store is not None and node.projector is not None
    bad = bad_messages()
    # Core NATS publish for the first one (no ack asked), JetStream publish for the rest.
    await node.bus.nc.publish(SUBJECT, bad[0][0])
    await node.bus.nc.flush()
    for body, _ in bad[1:]:
        await node.bus.js.publish(SUBJECT, body)
    publisher = await node.bus.publisher()
    good = [
        Event.new(MemoryStored(text=f"after the garbage {i}"), node="n1", lamport=10 + i)
        for i in range(3)
    ]
    acks = [await publisher.publish_wait(e) for e in good]
    await publisher.close()
    last = acks[-1].seq
    assert last == len(bad) + len(good)
    assert await node.projector.wait_for(EVENTS_STREAM, last)
    assert await node.projector.wait_for(HIVE_STREAM, last)

    store = node.store
    for i, e in enumerate(good):
        row = store.memory(e.entity)
        assert row is not None and row.text == f"after the garbage {i}"
    stats = store.stats()
    assert stats["applied"] == len(good) and stats["memories"] == len(good)
    assert stats["positions"] == {EVENTS_STREAM: last, HIVE_STREAM: last}

    # Each arrives through EVENTS and through HIVE, and is filed once, under its EVENTS
    # sequence (the HIVE copy's source header names it).
    letters = sorted(store.dead_letters(100), key=lambda d: d.seq)
    assert [(d.stream, d.seq) for d in letters] == [(EVENTS_STREAM, i + 1) for i in range(4)]
    assert stats["dead_letters"] == len(bad)
    for letter, (body, reason) in zip(letters, bad, strict=True):
        assert reason in letter.reason, letter.reason
        assert letter.data == body  # kept as received, for inspection

    # The CLI lists them: one line per dead letter, and the same with --json.
    cli = Cli(node.settings.data_dir, node.settings.port)
    text = cli.ok("dead-letters").splitlines()
    assert len(text) == len(bad)
    [first] = [d for d in letters if (d.stream, d.seq) == (EVENTS_STREAM, 1)]
    assert f"EVENTS #1: {first.reason}" in text
    rows = json.loads(cli.ok("--json", "dead-letters"))
    assert {(r["stream"], r["seq"]) for r in rows} == {(d.stream, d.seq) for d in letters}
    assert any("confidence" in r["reason"] for r in rows)
    digest = store.digest()

    # A rebuild files the same letters, once each.
    await node.stop()
    rebuilt = json.loads(cli.ok("--json", "projections", "rebuild"))
    assert rebuilt["dead_letters"] == len(bad) and rebuilt["digest"] == digest

    # A restart resumes after the positions: nothing is dead-lettered or applied again.
    await node.start()
    assert node.store is not None and node.projector is not None and node.bus is not None
    assert await node.projector.wait_for(HIVE_STREAM, last)
    more = Event.new(MemoryStored(text="after the restart"), node="n1", lamport=20)
    publisher = await node.bus.publisher()
    ack = await publisher.publish_wait(more)
    await publisher.close()
    assert await node.projector.wait_for(EVENTS_STREAM, ack.seq)
    assert await node.projector.wait_for(HIVE_STREAM, ack.seq)
    assert node.projector.totals.dead == 0
    assert node.projector.totals.applied == 1  # only the new event
    stats = node.store.stats()
    assert stats["dead_letters"] == len(bad)
    assert stats["applied"] == len(good) + 1
    assert node.store.memory(more.entity) is not None
    assert digest != node.store.digest()


async def test_a_valid_event_published_raw_is_applied(node: Node) -> None:
    """The node reads what is in the stream, however it got there: the plain msgpack bytes of
    a valid event, published without the hivebrain headers, are applied like any other."""
    assert node.bus is not None and node.store is not None and node.projector is not None
    event = Event.new(MemoryStored(text="raw but valid"), node="n1", lamport=1)
    ack = await node.bus.js.publish(subject(event), encode(event))
    assert await node.projector.wait_for(HIVE_STREAM, ack.seq)
    assert await node.projector.wait_for(EVENTS_STREAM, ack.seq)
    assert node.store.dead_letters() == []
    assert node.store.memory(event.entity) is not None


async def test_an_event_claiming_another_author_is_dead_lettered(node: Node) -> None:
    """The server lets n1 publish only under hive.n1.>; an event whose body names another node
    (or another entity than its subject) is a forgery and is never applied."""
    assert node.bus is not None and node.store is not None and node.projector is not None
    forged = Event.new(MemoryStored(text="written as the hub"), node="hub", lamport=9)
    ack = await node.bus.js.publish(f"hive.n1.memory.{forged.entity}", encode(forged))
    elsewhere = Event.new(MemoryStored(text="another entity"), node="n1", lamport=10)
    last = await node.bus.js.publish("hive.n1.memory.someone-else", encode(elsewhere))
    assert await node.projector.wait_for(HIVE_STREAM, last.seq)
    assert await node.projector.wait_for(EVENTS_STREAM, last.seq)
    # Filed under their EVENTS sequence (the same as in HIVE on a single node).
    reasons = {d.seq: d.reason for d in node.store.dead_letters() if d.stream == EVENTS_STREAM}
    assert "but the event says hive.hub.memory" in reasons[ack.seq]
    assert "stored under hive.n1.memory.someone-else" in reasons[last.seq]
    assert node.store.memory(forged.entity) is None
    assert node.store.memory(elsewhere.entity) is None


async def test_an_event_that_cannot_be_applied_is_dead_lettered_alone(node: Node) -> None:
    """An event that decodes but fails while being applied (here an integer too large for
    SQLite) goes to the dead letters; the events around it in the same batch are applied."""
    assert node.bus is not None and node.store is not None and node.projector is not None
    before = Event.new(MemoryStored(text="before the poison"), node="n1", lamport=1)
    poison = Event.new(
        DocumentIngested(source="x", content_hash="h", size=2**63, total_chunks=1),
        node="n1",
        lamport=2,
    )
    after = Event.new(MemoryStored(text="after the poison"), node="n1", lamport=3)
    publisher = await node.bus.publisher()
    futures = [await publisher.publish(e) for e in (before, poison, after)]
    acks = await asyncio.gather(*futures)
    await publisher.close()
    assert await node.projector.wait_for(HIVE_STREAM, acks[-1].seq)
    assert await node.projector.wait_for(EVENTS_STREAM, acks[-1].seq)
    assert node.store.memory(before.entity) is not None
    assert node.store.memory(after.entity) is not None
    dead = [d for d in node.store.dead_letters() if d.msg_id == poison.event_id]
    assert dead and "cannot apply knowledge.document_ingested" in dead[0].reason
