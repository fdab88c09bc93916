"""Session context and the tool cache in JetStream key-value buckets of a real nats-server:
round trips, escaping of odd names, clearing, and expiry by TTL (short TTLs, polled)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hivebrain.app.context import (
    ContextSettings,
    SessionContext,
    ToolCache,
    arguments_hash,
    escape,
    open_context,
    parse_ttl,
    unescape,
)
from hivebrain.errors import ConfigError
from hivebrain.transport.bus import Bus
from hivebrain.transport.topology import CACHE_BUCKET, CONTEXT_BUCKET

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_set_get_list_delete_clear(bus: Bus) -> None:
    context, _ = await open_context(bus, "n1", ContextSettings())
    assert await context.get("s1", "task") is None
    written = await context.set("s1", "task", {"goal": "fix the garage sensor", "step": 2})
    assert written.node == "n1" and written.ttl == 7 * 24 * 3600
    got = await context.get("s1", "task")
    assert got is not None and got.value == {"goal": "fix the garage sensor", "step": 2}
    assert got.expires_at == pytest.approx(got.at + got.ttl)
    await context.set("s1", "files", ["a.py", "b.py"])
    await context.set("s1", "task", "replaced")
    await context.set("s2", "task", "another session")
    assert [(e.key, e.value) for e in await context.list("s1")] == [
        ("files", ["a.py", "b.py"]),
        ("task", "replaced"),
    ]
    assert await context.delete("s1", "files") is True
    assert await context.delete("s1", "files") is False
    assert [e.key for e in await context.list("s1")] == ["task"]
    assert await context.clear("s1") == 1
    assert await context.list("s1") == []
    assert await context.clear("s1") == 0
    other = await context.get("s2", "task")
    assert other is not None and other.value == "another session"


async def test_odd_session_ids_and_keys_stay_apart(bus: Bus) -> None:
    context = await SessionContext(bus, "n1").open()
    names = ["chat:42", "chat.42", "chat=3A42", "a>b", "*", "ünï cödé 🐝", "a b/c"]
    for name in names:
        await context.set(name, name, f"value of {name}")
    for name in names:
        [entry] = await context.list(name)
        assert entry.key == name and entry.value == f"value of {name}"


async def test_bad_input_is_a_config_error(bus: Bus) -> None:
    context = await SessionContext(bus, "n1").open()
    with pytest.raises(ConfigError, match="session id cannot be empty"):
        await context.set("", "k", 1)
    with pytest.raises(ConfigError, match="key cannot be empty"):
        await context.get("s", "")
    with pytest.raises(ConfigError, match="longer than"):
        await context.set("s" * 300, "k", 1)
    with pytest.raises(ConfigError, match="larger than"):
        await context.set("s", "k", "x" * 600_000)
    with pytest.raises(ConfigError, match="not JSON"):
        await context.set("s", "k", {1, 2})


async def test_context_entries_expire_by_their_ttl(bus: Bus) -> None:
    context = await SessionContext(bus, "n1", ttl=1).open()
    await context.set("s", "short", "gone soon")
    await context.set("s", "long", "stays", ttl=3600)
    assert (await context.get("s", "short")) is not None

    async def expired() -> bool:
        return await context.get("s", "short") is None

    await eventually(expired, "the 1 s entry to expire")
    assert [e.key for e in await context.list("s")] == ["long"]


async def test_an_entry_past_its_ttl_is_not_returned(bus: Bus) -> None:
    context = await SessionContext(bus, "n1").open()
    # Written 10 s ago with a TTL of 5 s, and not yet removed by the server.
    body = {"value": "stale", "node": "n1", "at": time.time() - 10, "ttl": 5}
    await bus.js.publish(f"$KV.{CONTEXT_BUCKET}.s.stale", json.dumps(body).encode(), msg_ttl=3600)
    assert await context.get("s", "stale") is None
    assert await context.list("s") == []


async def test_tool_cache_hits_misses_and_expiry(bus: Bus) -> None:
    cache = await ToolCache(bus, "n1", ttl=2).open()
    args = {"path": "/etc/hosts", "lines": [1, 2]}
    assert await cache.get("read_file", args) is None
    await cache.put("read_file", args, {"text": "127.0.0.1 localhost"})
    same_args_reordered = {"lines": [1, 2], "path": "/etc/hosts"}
    hit = await cache.get("read_file", same_args_reordered)
    assert hit is not None and hit.value == {"text": "127.0.0.1 localhost"} and hit.ttl == 2
    assert await cache.get("read_file", {"path": "/etc/hostname"}) is None
    assert await cache.get("other_tool", args) is None

    async def expired() -> bool:
        return await cache.get("read_file", args) is None

    await eventually(expired, "the cached output to expire")


async def test_buckets_reopen_and_raise_their_ceiling(bus: Bus) -> None:
    await open_context(bus, "n1", ContextSettings(context_ttl=60, cache_ttl=60))
    await open_context(bus, "n1", ContextSettings(context_ttl=30, cache_ttl=30))  # kept at 60
    info = await bus.js.stream_info(f"KV_{CONTEXT_BUCKET}")
    assert info.config.max_age == 60
    context = await SessionContext(bus, "n1", ttl=60).open()
    await context.set("s", "k", "v", ttl=600)  # more than the ceiling: raised
    info = await bus.js.stream_info(f"KV_{CONTEXT_BUCKET}")
    assert info.config.max_age == 600
    got = await context.get("s", "k")
    assert got is not None and got.ttl == 600
    assert (await bus.js.stream_info(f"KV_{CACHE_BUCKET}")).config.max_age == 60


def test_parse_ttl() -> None:
    assert parse_ttl("90") == 90 and parse_ttl("90s") == 90 and parse_ttl("15m") == 900
    assert parse_ttl("1h") == 3600 and parse_ttl("7d") == 604800 and parse_ttl("2W") == 1209600
    assert parse_ttl(5) == 5
    assert parse_ttl("1.5h") == 5400
    for bad in ("0", "-1", "0.5", "1.5", "soon", ""):
        with pytest.raises(ConfigError):
            parse_ttl(bad)


def test_arguments_hash_is_canonical() -> None:
    assert arguments_hash({"a": 1, "b": [1, "x"]}) == arguments_hash({"b": [1, "x"], "a": 1})
    assert arguments_hash({"a": 1}) != arguments_hash({"a": "1"})


@given(st.text(min_size=1, max_size=60))
def test_escape_round_trips_into_one_valid_token(name: str) -> None:
    token = escape(name)
    assert token and all(c.isascii() and (c.isalnum() or c in "-_=") for c in token)
    assert unescape(token) == name
