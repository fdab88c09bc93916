"""The MCP server end to end, as an MCP client runs it: `hivebrain mcp` started by the SDK's
stdio client against a running node (`hivebrain up` in a temporary data directory), every tool
called, invalid calls answered with one-line tool errors while the server keeps serving, and
the interaction log on the stream free of the secrets that were typed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from nats.js.errors import NotFoundError
from nodeproc import HIVEBRAIN, Cli, NodeProcess

from hivebrain.events import decode
from hivebrain.events.interaction import InteractionLogged
from hivebrain.events.subjects import EVENTS_STREAM
from hivebrain.transport.bus import connect
from hivebrain.transport.server import free_port

TOOLS = {
    "memory_recall",
    "memory_store",
    "memory_context",
    "memory_clear",
    "memory_move",
    "memory_forget",
    "memory_erase",
    "knowledge_search",
    "devices_list",
    "tool_cache",
}
SECRET = "ghp_" + "Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1Ji0Hg9Fe8Dc7"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("mcp") / "home", free_port())


@pytest.fixture(scope="module")
def node(cli: Cli) -> Iterator[NodeProcess]:
    process = NodeProcess(cli)
    process.start()
    yield process
    process.close()


@asynccontextmanager
async def mcp_session(cli: Cli, *options: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=str(HIVEBRAIN), args=cli.argv("mcp", *options)[1:], env=cli.env
    )
    errlog = (cli.home.parent / f"mcp-{time.monotonic_ns()}.err").open("w")
    try:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
    finally:
        errlog.close()


async def ok(session: ClientSession, tool: str, /, **arguments: Any) -> Any:
    result = await session.call_tool(tool, arguments)
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, f"{tool} failed: {text}"
    return json.loads(text)


async def error(session: ClientSession, tool: str, /, **arguments: Any) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error
    [content] = result.content
    text: str = content.text  # type: ignore[union-attr]
    assert "\n" not in text and "Traceback" not in text, text
    return text


def ids(found: dict[str, Any]) -> list[str]:
    return [hit["id"] for hit in found["results"]]


async def recall_ids(session: ClientSession, query: str, **options: Any) -> list[str]:
    """Ids by keywords (exact sets: vectors, where the node embeds, find near texts too)."""
    return ids(await ok(session, "memory_recall", query=query, mode="keyword", **options))


async def test_tools_are_listed_with_typed_described_arguments(cli: Cli, node: NodeProcess) -> None:
    async with mcp_session(cli) as session:
        listed = (await session.list_tools()).tools
    assert {tool.name for tool in listed} == TOOLS
    for tool in listed:
        assert tool.description
        schema = tool.input_schema
        assert schema["type"] == "object" and schema.get("additionalProperties") is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    recall = next(t for t in listed if t.name == "memory_recall")
    assert recall.input_schema["required"] == ["query"]
    assert recall.input_schema["properties"]["limit"]["maximum"] == 100
    clear = next(t for t in listed if t.name == "memory_clear")
    assert clear.annotations is not None and clear.annotations.destructive_hint is True


async def test_store_recall_move_forget(cli: Cli, node: NodeProcess) -> None:
    async with mcp_session(cli) as session:
        stored = await ok(
            session,
            "memory_store",
            text="the greenhouse pump relay is on GPIO 22",
            tags=["garden", "gpio"],
            session="s-store",
        )
        assert stored["type"] == "memory.stored" and stored["stream"] == "EVENTS"
        memory = stored["id"]
        found = await ok(session, "memory_recall", query="greenhouse pump", mode="keyword")
        assert ids(found) == [memory]  # found by the very next call
        [hit] = found["results"]
        assert hit["text"] == "the greenhouse pump relay is on GPIO 22"
        assert hit["tags"] == ["garden", "gpio"] and hit["space"] == "long_term"
        assert found["mode"] == "keyword" and found["note"] is None
        hybrid = await ok(session, "memory_recall", query="greenhouse pump")
        assert hybrid["mode"] in ("hybrid", "keyword") and memory in ids(hybrid)
        assert await recall_ids(session, "greenhouse", tags=["nope"]) == []
        assert await recall_ids(session, "greenhouse", agent="coder") == []
        assert await recall_ids(session, "greenhouse", agent="*") == [memory]

        other = await ok(session, "memory_store", text="coder notes on greenhouse", agent="coder")
        everyone = await recall_ids(session, "greenhouse", agent="*")
        assert set(everyone) == {memory, other["id"]}

        moved = await ok(session, "memory_move", id=memory, space="archive", reason="old")
        assert moved["moved"] is True and moved["from_space"] == "long_term"
        assert await recall_ids(session, "greenhouse", space="archive") == [memory]
        again = await ok(session, "memory_move", id=memory, space="archive")
        assert again["moved"] is False

        assert (await ok(session, "memory_forget", id=memory))["forgotten"] is True
        assert await recall_ids(session, "greenhouse pump") == []
        message = await error(session, "memory_forget", id=memory)
        assert message == f"memory_forget: no memory {memory!r} on this node"

        unconfirmed = await error(session, "memory_erase", id=other["id"])
        assert "needs confirm=true" in unconfirmed
        erased = await ok(session, "memory_erase", id=other["id"], confirm=True)
        assert erased["erased"] is True and erased["type"] == "memory.erased"
        assert await recall_ids(session, "coder notes", agent="*") == []
        message = await error(session, "memory_erase", id=other["id"], confirm=True)
        assert "already erased" in message


async def test_a_stored_memory_records_the_uuid_of_a_named_agent(
    cli: Cli, node: NodeProcess
) -> None:
    uuid = cli.ok("agent", "create", "mcp-writer").strip()
    async with mcp_session(cli) as session:
        stored = await ok(
            session, "memory_store", text="named agents keep uuids", agent="mcp-writer"
        )
        plain = await ok(
            session, "memory_store", text="plain agents keep names", agent="nobody-yet"
        )
        found = await ok(session, "memory_recall", query="agents keep", mode="keyword", agent="*")
    agents = {hit["id"]: hit["agent"] for hit in found["results"]}
    assert agents == {stored["id"]: uuid, plain["id"]: "nobody-yet"}
    listed = json.loads(cli.ok("--json", "memories", "list", "--agent", uuid))
    assert [row["id"] for row in listed] == [stored["id"]]


async def test_invalid_calls_are_one_line_errors_and_the_server_stays_up(
    cli: Cli, node: NodeProcess
) -> None:
    async with mcp_session(cli) as session:
        assert "limit" in await error(session, "memory_recall", query="x", limit=1000)
        assert "query: required argument missing" in await error(session, "memory_recall")
        assert "colour: unknown argument" in await error(
            session, "memory_recall", query="x", colour="blue"
        )
        assert "space" in await error(session, "memory_store", text="x", space="attic")
        assert "tags" in await error(session, "memory_store", text="x", tags=["two words"])
        assert "unknown tool 'memory_teleport'" in await error(session, "memory_teleport")
        assert "no memory" in await error(session, "memory_move", id="nope", space="archive")
        assert "needs a key" in await error(session, "memory_context", session="s", action="set")
        message = await error(session, "memory_recall", query="x", limit="many", mode="psychic")
        assert message.endswith("(and 1 more)")
        # still serving
        stored = await ok(session, "memory_store", text="the server still answers")
        assert await recall_ids(session, "server still answers") == [stored["id"]]


async def test_tool_outputs_are_cached_by_their_arguments(cli: Cli, node: NodeProcess) -> None:
    async with mcp_session(cli) as session:
        args = {"url": "http://pi-garage/metrics", "lines": 10}
        miss = await ok(session, "tool_cache", tool="fetch", arguments=args)
        assert miss["found"] is False
        put = await ok(
            session, "tool_cache", action="put", tool="fetch", arguments=args, output="temp 21"
        )
        assert put["cached"] is True and put["ttl"] == 3600
        same = {"lines": 10, "url": "http://pi-garage/metrics"}  # the same JSON, reordered
        hit = await ok(session, "tool_cache", tool="fetch", arguments=same)
        assert hit["found"] is True and hit["value"] == "temp 21"
        other = await ok(session, "tool_cache", tool="fetch", arguments={**args, "lines": 11})
        assert other["found"] is False
        assert "needs an output" in await error(
            session, "tool_cache", action="put", tool="fetch", arguments=args
        )
        # the CLI reads the same cache
        assert "temp 21" in cli.ok("cache", "get", "fetch", json.dumps(same))


async def test_session_context_and_clear(cli: Cli, node: NodeProcess) -> None:
    async with mcp_session(cli) as session:
        got = await ok(session, "memory_context", session="chat:7", key="task")
        assert got["found"] is False
        written = await ok(
            session,
            "memory_context",
            session="chat:7",
            action="set",
            key="task",
            value={"goal": "fix the pump", "step": 1},
        )
        assert written["ttl"] == 7 * 24 * 3600 and written["node"] == "n1"
        await ok(session, "memory_context", session="chat:7", action="set", key="files", value=[])
        whole = await ok(session, "memory_context", session="chat:7")
        assert whole["context"] == {"files": [], "task": {"goal": "fix the pump", "step": 1}}
        one = await ok(session, "memory_context", session="chat:7", key="task")
        assert one["found"] is True and one["value"] == {"goal": "fix the pump", "step": 1}
        deleted = await ok(
            session, "memory_context", session="chat:7", action="delete", key="files"
        )
        assert deleted["deleted"] is True

        # the CLI sees the same context (one bucket per node)
        assert json.loads(cli.ok("context", "get", "chat:7", "task")) == {
            "goal": "fix the pump",
            "step": 1,
        }

        work = [
            await ok(
                session, "memory_store", text=f"scratch note {i} about valves", space="working"
            )
            for i in range(3)
        ]
        kept = await ok(session, "memory_store", text="long term note about valves")
        refused = await error(session, "memory_clear", session="chat:7", agent="default")
        assert "confirm=true" in refused and "chat:7" in refused
        assert "needs a session, an agent" in await error(session, "memory_clear", confirm=True)
        cleared = await ok(session, "memory_clear", session="chat:7", agent="default", confirm=True)
        assert cleared["context_keys_cleared"] == 1
        assert sorted(cleared["ids"]) == sorted(w["id"] for w in work)
        assert (await ok(session, "memory_context", session="chat:7"))["context"] == {}
        assert await recall_ids(session, "valves") == [kept["id"]]


async def test_context_entries_expire_through_mcp(cli: Cli, node: NodeProcess) -> None:
    async with mcp_session(cli) as session:
        await ok(
            session,
            "memory_context",
            session="brief",
            action="set",
            key="k",
            value="soon gone",
            ttl_seconds=1,
        )
        deadline = time.monotonic() + 15
        while (await ok(session, "memory_context", session="brief", key="k"))["found"]:
            assert time.monotonic() < deadline, "the 1 s entry never expired"
            await asyncio.sleep(0.2)


async def test_knowledge_search_and_devices(cli: Cli, node: NodeProcess, tmp_path: Path) -> None:
    (tmp_path / "pump.md").write_text("# Pump manual\n\nThe peristaltic pump needs 12 V.\n")
    cli.ok("ingest", str(tmp_path))
    async with mcp_session(cli) as session:
        found = await ok(session, "knowledge_search", query="peristaltic pump")
        assert found["count"] == 1 and "12 V" in found["results"][0]["text"]
        assert found["results"][0]["source"].endswith("pump.md")
        deadline = time.monotonic() + 20
        while True:
            devices = await ok(session, "devices_list")
            if any(d["name"] == "n1" for d in devices["devices"]):
                break
            assert time.monotonic() < deadline, "the node never registered itself"
            await asyncio.sleep(0.2)
        n1 = next(d for d in devices["devices"] if d["name"] == "n1")
        assert n1["cores"] > 0 and "online" in n1


async def test_interactions_are_logged_without_secrets(cli: Cli, node: NodeProcess) -> None:
    query = f"deploy key password=hunter2 token {SECRET}"
    async with mcp_session(cli) as session:
        await ok(session, "memory_recall", query=query, session="s-secret")
        await ok(session, "memory_store", text=f"the deploy uses password=hunter2 and {SECRET}")
    # the server flushed its log before exiting; read the node's own stream
    bus = await connect(f"nats://127.0.0.1:{cli.port}")
    try:
        raw: list[bytes] = []
        last = await bus.last_seq(EVENTS_STREAM)
        for seq in range(1, last + 1):
            try:
                msg = await bus.js.get_msg(EVENTS_STREAM, seq)
            except NotFoundError:  # deleted by the erase in an earlier test
                continue
            raw.append(msg.data or b"")
    finally:
        await bus.close()
    logged = [
        e.payload
        for e in (decode(data) for data in raw)
        if isinstance(e.payload, InteractionLogged)
    ]
    recall = next(p for p in logged if p.session == "s-secret")
    assert recall.tool == "memory_recall" and recall.outcome == "success"
    assert recall.query == (
        "deploy key password=[REDACTED:assignment] token [REDACTED:github-token]"
    )
    assert recall.latency_ms > 0 and recall.agent == "default"
    store = next(p for p in logged if p.tool == "memory_store" and "deploy uses" in p.query)
    assert "hunter2" not in store.query and SECRET not in store.query
    for p in logged:  # no interaction event anywhere carries a secret
        assert "hunter2" not in p.model_dump_json() and SECRET not in p.model_dump_json()


async def test_logging_can_be_turned_off(cli: Cli, node: NodeProcess) -> None:
    async with mcp_session(cli, "--no-log-interactions") as session:
        await ok(session, "memory_recall", query="unlogged-marker-query")
    async with mcp_session(cli) as session:
        await ok(session, "memory_recall", query="logged-marker-query")
    tail = cli.ok("--json", "events", "tail", "-n", "50", "--stream", "EVENTS")
    assert "logged-marker-query" in tail and "unlogged-marker-query" not in tail


def test_cli_logs_interactions_only_when_asked(cli: Cli, node: NodeProcess) -> None:
    cli.ok("recall", "quiet-cli-query")
    cli.ok("recall", "loud-cli-query", "--log-interaction")
    cli.ok("remember", "cli remembers api_key=abc123xyz", "--log-interaction")
    tail = cli.ok("--json", "events", "tail", "-n", "50", "--stream", "EVENTS")
    events = [json.loads(line) for line in tail.splitlines()]
    logged = [e for e in events if e["type"] == "interaction.logged"]
    queries = [e["payload"]["query"] for e in logged]
    assert "loud-cli-query" in queries and "quiet-cli-query" not in queries
    assert "cli remembers api_key=[REDACTED:assignment]" in queries
    assert "abc123xyz" not in tail.replace("cli remembers api_key=abc123xyz", "")
    tools = {e["payload"]["tool"] for e in logged}
    assert {"cli.recall", "cli.remember"} <= tools


def test_bad_ttl_is_a_one_line_error(cli: Cli) -> None:
    result = cli.run("mcp", "--context-ttl", "soon")
    assert result.code == 2 and "bad TTL 'soon'" in result.err
    assert len(result.err_lines) == 1 and "Traceback" not in result.err


def test_context_and_cache_commands(cli: Cli, node: NodeProcess) -> None:
    assert cli.ok("context", "set", "cli:1", "goal", "water the plants").startswith(
        "set goal in cli:1 until "
    )
    cli.ok("context", "set", "cli:1", "step", "3", "--json-value", "--ttl", "1h")
    assert cli.ok("context", "get", "cli:1", "goal") == "water the plants\n"
    assert json.loads(cli.ok("context", "get", "cli:1")) == {"goal": "water the plants", "step": 3}
    rows = json.loads(cli.ok("--json", "context", "list", "cli:1"))
    assert [(r["key"], r["ttl"]) for r in rows] == [("goal", 7 * 24 * 3600), ("step", 3600)]
    assert "cleared 1 key of session cli:1" in cli.ok("context", "clear", "cli:1", "step")
    assert "cleared 1 key of session cli:1" in cli.ok("context", "clear", "cli:1")
    assert cli.ok("context", "list", "cli:1").strip() == "no context for session 'cli:1'"

    missing = cli.run("context", "get", "cli:1", "goal")
    assert missing.code == 3 and missing.err_lines == [
        "error: no key 'goal' in the context of session 'cli:1'"
    ]
    bad = cli.run("context", "set", "cli:1", "k", "{oops", "--json-value")
    assert bad.code == 2 and len(bad.err_lines) == 1 and "VALUE is not JSON" in bad.err
    bad_ttl = cli.run("context", "set", "cli:1", "k", "v", "--ttl", "0")
    assert bad_ttl.code == 2 and "at least 1 second" in bad_ttl.err

    assert cli.run("cache", "get", "weather", '{"city": "Oslo"}').code == 1
    cli.ok("cache", "put", "weather", '{"city": "Oslo"}', '{"temp": -3}', "--ttl", "10m")
    assert json.loads(cli.ok("cache", "get", "weather", '{ "city":"Oslo" }')) == {"temp": -3}
