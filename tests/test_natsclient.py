"""The client's faster header parser gives what nats-py's own gives, for any header block."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client

from hivebrain.transport.bus import Bus
from hivebrain.transport.client import HiveClient

# Bytes that make header parsing interesting: separators, every kind of ASCII whitespace,
# non-ASCII and invalid UTF-8.
_PIECES = st.sampled_from(
    [
        b"Nats-Msg-Id",
        b"Hive-Type",
        b"a",
        b"\xc3\xa9",
        b"\xff",
        b":",
        b": ",
        b"\r\n",
        b" ",
        b"\t",
        b"\x0b",
        b"\x0c",
        b"\x1c",
        b"\x1f",
        b"\n",
        b"\r",
        b"memory.stored",
        b"EVENTS 12 > > hive.n1.memory.m1",
    ]
)


@given(st.lists(_PIECES, max_size=24).map(b"".join))
def test_header_parser_matches_nats_py(raw: bytes) -> None:
    assert HiveClient._parse_header_lines(raw) == Client._parse_header_lines(raw)


@given(st.binary(max_size=200))
def test_header_parser_matches_nats_py_on_any_bytes(raw: bytes) -> None:
    assert HiveClient._parse_header_lines(raw) == Client._parse_header_lines(raw)


def test_header_parser_reads_a_stored_message_block() -> None:
    raw = b"Nats-Msg-Id: abc\r\nHive-Type: memory.stored\r\nBad Name: x\r\n\xff: y\r\n\r\n"
    assert HiveClient._parse_header_lines(raw) == {
        "Nats-Msg-Id": "abc",
        "Hive-Type": "memory.stored",
    }


async def test_bus_uses_the_client_and_headers_arrive(bus: Bus) -> None:
    assert isinstance(bus.nc, HiveClient)
    got: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    async def on_msg(msg: object) -> None:
        if not got.done():
            got.set_result(dict(getattr(msg, "headers", None) or {}))

    sub = await bus.nc.subscribe("probe", cb=on_msg)
    await bus.nc.publish("probe", b"x", headers={"Hive-Node": "n1", "Nats-Msg-Id": "é-1"})
    assert await asyncio.wait_for(got, 5) == {"Hive-Node": "n1", "Nats-Msg-Id": "é-1"}
    await sub.unsubscribe()
