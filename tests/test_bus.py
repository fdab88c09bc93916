"""The JetStream adapter and publisher against a real nats-server."""

from __future__ import annotations

import asyncio

import pytest

from hivebrain.errors import NotConnected, PublishTimeout
from hivebrain.events import Event, decode
from hivebrain.events.memory import MemoryStored
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM, headers, subject
from hivebrain.transport.bus import Bus, RawMessage, connect
from hivebrain.transport.server import NatsServer, free_port


def _event(i: int, node: str = "n1") -> Event:
    return Event.new(MemoryStored(text=f"memory {i}"), node=node, lamport=i + 1)


async def _read(bus: Bus, stream: str, start: int, count: int) -> list[RawMessage]:
    got: list[RawMessage] = []
    done = asyncio.Event()

    async def handler(msg: RawMessage) -> None:
        got.append(msg)
        if len(got) >= count:
            done.set()

    sub = await bus.consume(stream, start, handler)
    await asyncio.wait_for(done.wait(), 10)
    await sub.unsubscribe()
    return got


async def test_publish_acks_and_hive_sources_events(bus: Bus) -> None:
    publisher = await bus.publisher()
    events = [_event(i) for i in range(500)]
    futures = [await publisher.publish(e) for e in events]
    acks = await asyncio.gather(*futures)
    assert [a.seq for a in acks] == list(range(1, 501))
    assert {a.stream for a in acks} == {EVENTS_STREAM}
    hive = await _read(bus, HIVE_STREAM, 1, 500)
    assert [decode(m.data) for m in hive] == events
    assert hive[0].msg_id == events[0].event_id
    assert hive[0].headers["Hive-Type"] == "memory.stored"
    await publisher.close()


async def test_published_headers_are_the_events_headers(bus: Bus) -> None:
    publisher = await bus.publisher()
    events = [_event(i) for i in range(3)]
    for event in events:
        await publisher.publish_wait(event)
    await publisher.close()
    got = await _read(bus, EVENTS_STREAM, 1, 3)
    assert [m.headers for m in got] == [headers(e) for e in events]
    assert [m.subject for m in got] == [subject(e) for e in events]


async def test_publisher_bounds_events_in_flight(bus: Bus) -> None:
    publisher = await bus.publisher(max_in_flight=8)
    events = [_event(i) for i in range(200)]
    futures = [await publisher.publish(e) for e in events]
    futures[5].cancel()  # a caller that gives up on its ack still frees its room
    await publisher.flush()
    acks = [await f for i, f in enumerate(futures) if i != 5]
    assert sorted(a.seq for a in acks) == [s for s in range(1, 201) if s != 6]
    more = [await publisher.publish(_event(i)) for i in range(200, 220)]
    assert [(await f).seq for f in more] == list(range(201, 221))
    await publisher.close()


async def test_republish_same_event_is_deduplicated(bus: Bus) -> None:
    publisher = await bus.publisher()
    event = _event(1)
    first = await publisher.publish_wait(event)
    again = await publisher.publish_wait(event)
    assert again.duplicate and again.seq == first.seq
    assert await bus.last_seq(EVENTS_STREAM) == 1
    await publisher.close()


async def test_consume_from_a_stored_position(bus: Bus) -> None:
    publisher = await bus.publisher()
    for i in range(20):
        await publisher.publish(_event(i))
    await publisher.flush()
    tail = await _read(bus, EVENTS_STREAM, 15, 6)
    assert [m.seq for m in tail] == [15, 16, 17, 18, 19, 20]
    await publisher.close()


async def test_publish_without_a_stream_fails_after_its_patience(bus: Bus) -> None:
    publisher = await bus.publisher(ack_timeout=0.2, retries=2, no_stream_patience=1.0)
    # No stream captures another node's subjects: the server answers "no responders", which
    # is retried for the patience without spending retries, then fails with a clear reason.
    with pytest.raises(PublishTimeout, match=r"^no stream takes hive\.elsewhere\.memory\."):
        await publisher.publish_wait(_event(1, node="elsewhere"))
    assert publisher.stats.retries >= 4  # resent every 0.2 s, more than `retries` allows
    await publisher.close()


async def test_unacknowledged_publish_times_out_after_retries(nats_server: NatsServer) -> None:
    bus = await connect(nats_server.url)
    # A plain subscriber takes the subject, so there are responders, but no ack ever comes.
    sub = await bus.nc.subscribe("hive.n1.>")
    publisher = await bus.publisher(ack_timeout=0.2, retries=2)
    with pytest.raises(PublishTimeout, match="after 3 attempts"):
        await publisher.publish_wait(_event(1))
    assert publisher.stats.retries == 2
    await publisher.close()
    await sub.unsubscribe()
    await bus.close()


async def test_publish_survives_a_server_restart(nats_server: NatsServer) -> None:
    bus = await connect(nats_server.url)
    await bus.ensure_streams("n1")
    publisher = await bus.publisher(ack_timeout=1.0, retries=30)
    await nats_server.stop()
    futures = [await publisher.publish(_event(i)) for i in range(50)]
    await asyncio.sleep(0.5)
    await nats_server.start()
    acks = await asyncio.wait_for(asyncio.gather(*futures), 60)
    assert sorted(a.seq for a in acks) == list(range(1, 51))
    assert await bus.last_seq(EVENTS_STREAM) == 50
    await publisher.close()
    await bus.close()


async def test_connect_to_nobody_is_one_clear_error() -> None:
    with pytest.raises(NotConnected, match="cannot reach NATS"):
        await connect(f"nats://127.0.0.1:{free_port()}", timeout=0.5)
