"""The streams are readable without hivebrain: what `nats stream get` and `nats stream view
--translate 'hivebrain events decode'` show, checked through the JetStream API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from hivebrain.events import Event
from hivebrain.events.memory import MemoryStored
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM
from hivebrain.transport.bus import Bus

HIVEBRAIN = str(Path(sys.executable).parent / "hivebrain")


async def test_stored_message_has_readable_headers_and_translates_to_json(bus: Bus) -> None:
    publisher = await bus.publisher()
    event = Event.new(
        MemoryStored(text="the tomato seedlings need water", tags=("garden",)),
        node="n1",
        lamport=7,
        entity="m-tomato",
    )
    ack = await publisher.publish_wait(event)
    await publisher.close()

    msg = await bus.js.get_msg(EVENTS_STREAM, ack.seq)
    assert msg.subject == "hive.n1.memory.m-tomato"
    assert msg.headers is not None
    assert msg.headers["Nats-Msg-Id"] == event.event_id
    assert msg.headers["Hive-Type"] == "memory.stored"
    assert msg.headers["Hive-Node"] == "n1"
    assert msg.headers["Hive-Lamport"] == "7"
    assert msg.headers["Content-Type"] == "application/msgpack"

    # The `--translate` filter: the body on stdin, JSON on stdout.
    out = await asyncio.to_thread(
        subprocess.run,
        [HIVEBRAIN, "events", "decode"],
        input=msg.data,
        capture_output=True,
        check=True,
    )
    decoded = json.loads(out.stdout)
    assert decoded["event_id"] == event.event_id
    assert decoded["type"] == "memory.stored"
    assert decoded["lamport"] == 7
    assert decoded["payload"]["text"] == "the tomato seedlings need water"
    assert decoded["payload"]["tags"] == ["garden"]


async def test_streams_are_named_and_configured_as_documented(bus: Bus) -> None:
    events = await bus.js.stream_info(EVENTS_STREAM)
    assert events.config.subjects == ["hive.n1.>"]
    assert events.config.max_age in (0, None)
    assert events.config.duplicate_window == 120
    hive = await bus.js.stream_info(HIVE_STREAM)
    assert not hive.config.subjects
    assert [s.name for s in hive.config.sources or []] == [EVENTS_STREAM]
    assert hive.config.duplicate_window == 120


def test_translate_filter_rejects_garbage_with_one_line() -> None:
    out = subprocess.run([HIVEBRAIN, "events", "decode"], input=b"\xc1garbage", capture_output=True)
    assert out.returncode == 2
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: not msgpack")
