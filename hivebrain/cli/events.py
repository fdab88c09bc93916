"""Event commands: publish any registered event type; tail the streams decoded."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys

import click

from hivebrain.app.connection import reach_nats
from hivebrain.cli.support import (
    emit,
    install_stop_signals,
    pass_settings,
    run,
)
from hivebrain.config import Settings
from hivebrain.errors import EventError
from hivebrain.events import Event, all_types, decode
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM
from hivebrain.transport.bus import RawMessage


@click.group()
def events() -> None:
    """Read the event streams."""


@events.command("types")
@pass_settings
def event_types(settings: Settings) -> None:
    """List every event type with its payload fields."""
    types = {name: cls.model_json_schema() for name, cls in all_types().items()}
    emit(
        settings,
        types,
        lambda t: "\n".join(
            f"{name:34} {', '.join(schema.get('properties', {}))}" for name, schema in t.items()
        ),
    )


def _summary(event: Event) -> str:
    fields = event.payload.model_dump(exclude_defaults=True)
    parts = []
    for key, value in fields.items():
        if isinstance(value, bytes):
            value = f"<{len(value)} bytes>"
        text = str(value)
        parts.append(f"{key}={text[:60] + '...' if len(text) > 60 else text}")
    return " ".join(parts)


def _line(msg: RawMessage, settings: Settings) -> str:
    try:
        event = decode(msg.data)
    except EventError as exc:
        if settings.json_output:
            return json.dumps({"stream": msg.stream, "seq": msg.seq, "error": str(exc)})
        return f"#{msg.seq:<7} <undecodable: {exc}>"
    if settings.json_output:
        return json.dumps({"stream": msg.stream, "seq": msg.seq, **event.describe()}, default=str)
    when = dt.datetime.fromtimestamp(event.ts).strftime("%H:%M:%S")
    return (
        f"#{msg.seq:<7} {when} L{event.lamport:<6} {event.node:10} {event.type:28} "
        f"{event.entity[:12]}  {_summary(event)}"
    )


@events.command("tail")
@click.option("-n", "count", type=click.IntRange(0), default=20, show_default=True)
@click.option("--stream", type=click.Choice([HIVE_STREAM, EVENTS_STREAM]), default=HIVE_STREAM)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events.")
@pass_settings
def tail(settings: Settings, count: int, stream: str, follow: bool) -> None:
    """Print the last events of a stream, decoded."""

    async def go() -> None:
        async with reach_nats(settings) as bus:
            last = await bus.last_seq(stream)
            start = max(1, last - count + 1)
            stop = asyncio.Event()
            if not follow and last < start:
                return

            async def handler(msg: RawMessage) -> None:
                click.echo(_line(msg, settings))
                if not follow and msg.seq >= last:
                    stop.set()

            if follow:
                install_stop_signals(stop)
            sub = await bus.consume(stream, start if count else last + 1, handler)
            await stop.wait()
            await sub.unsubscribe()

    run(go())


@events.command("decode")
@pass_settings
def decode_stdin(settings: Settings) -> None:
    """Decode one msgpack event from stdin to JSON: the `--translate` filter for the `nats` CLI
    (e.g. `nats stream view HIVE --translate 'hivebrain events decode'`)."""
    data = sys.stdin.buffer.read()
    event = decode(data)
    click.echo(json.dumps(event.describe(), indent=None if settings.json_output else 2))
