"""The MCP server's latency as a client sees it: `hivebrain mcp` started by the SDK's stdio
client, calls timed from the client's request to its decoded answer.

- memory_store: until JetStream acknowledged the event (no node runs here, so nothing waits
  for a projection). Baseline: `Brain.publish_acked` of the same payloads in process.
- memory_recall over a projection of `n` memories (the recall bench's corpus, applied
  directly), default arguments plus agent="*" (every agent's memories). Baseline:
  `ProjectionStore.recall` with the same arguments in process.

Both sides talk to the same nats-server and SQLite file; interaction logging stays on (the
server's default: each call also writes an `interaction.logged` event, in the background).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from hivebrain.app.connection import open_brain
from hivebrain.config import Settings, load_settings
from hivebrain.events.memory import SPACES, MemoryStored
from hivebrain.node.node import server_config
from hivebrain.projections import ProjectionStore
from hivebrain.transport.server import NatsServer, free_port

from .common import NODE, Corpus, Figure, percentile, say
from .recall import _fill_store, _memories

TARGET_STORE_P50_MS = 20.0
TARGET_RECALL_P50_MS = 30.0
WARMUP = 20
HIVEBRAIN = Path(sys.executable).parent / "hivebrain"


def _settings(home: Path, port: int) -> Settings:
    return load_settings(
        data_dir=str(home),
        node=NODE,
        nats_url=None,
        port=port,
        nats_binary=None,
        json_output=False,
        env={},
    )


def _payloads(n: int) -> list[MemoryStored]:
    corpus = Corpus(seed=11)
    rng = random.Random(11)
    return [
        MemoryStored(
            text=corpus.text(), tags=corpus.tags(), space=rng.choice(SPACES), source="bench"
        )
        for _ in range(n)
    ]


async def _timed(calls: list[Callable[[], Awaitable[object]]]) -> list[float]:
    for call in calls[:WARMUP]:
        await call()
    times = []
    for call in calls:
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return times


async def _through_mcp(
    settings: Settings, port: int, stores: list[MemoryStored], queries: list[str]
) -> tuple[list[float], list[float], int]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HIVEBRAIN_")},
        "HIVEBRAIN_HOME": str(settings.data_dir),
        "HIVEBRAIN_NODE": NODE,
    }
    params = StdioServerParameters(
        command=str(HIVEBRAIN), args=["--port", str(port), "mcp"], env=env
    )
    hits = 0

    def store(p: MemoryStored) -> Callable[[], Awaitable[object]]:
        async def call() -> object:
            args = {"text": p.text, "tags": list(p.tags), "space": p.space, "source": "bench"}
            result = await session.call_tool("memory_store", args)
            assert not result.is_error, result.content
            return result

        return call

    def recall(q: str) -> Callable[[], Awaitable[object]]:
        async def call() -> object:
            nonlocal hits
            result = await session.call_tool("memory_recall", {"query": q, "agent": "*"})
            assert not result.is_error, result.content
            hits += int(json.loads(result.content[0].text)["count"])  # type: ignore[union-attr]
            return result

        return call

    async with (
        stdio_client(params, errlog=sys.stderr) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        store_t = await _timed([store(p) for p in stores])
        hits = 0
        recall_t = await _timed([recall(q) for q in queries])
    return store_t, recall_t, hits


async def _in_process(
    settings: Settings, stores: list[MemoryStored], queries: list[str]
) -> tuple[list[float], list[float], int]:
    hits = 0
    async with open_brain(settings) as brain:

        def store(p: MemoryStored) -> Callable[[], Awaitable[object]]:
            async def call() -> object:
                return await brain.publish_acked(p)

            return call

        def recall(q: str) -> Callable[[], Awaitable[object]]:
            async def call() -> object:
                nonlocal hits
                result = brain.store.recall(q, limit=10, all_agents=True)
                hits += len(result.hits)
                return result

            return call

        store_t = await _timed([store(p) for p in stores])
        hits = 0
        recall_t = await _timed([recall(q) for q in queries])
    return store_t, recall_t, hits


async def run(scratch: Path, n: int, calls: int) -> list[Figure]:
    home = scratch / "home"
    port = free_port()
    settings = _settings(home, port)
    say(f"mcp: a projection of {n:,} memories")
    _fill_store(settings.db_path, _memories(n)).close()
    ProjectionStore(settings.db_path).close()
    server = NatsServer(server_config(settings))
    await server.start()
    try:
        query_corpus = Corpus(seed=4)
        queries = [query_corpus.query() for _ in range(calls)]
        say(f"mcp: {calls} memory_store and {calls} memory_recall calls through MCP")
        m_store, m_recall, m_hits = await _through_mcp(settings, port, _payloads(calls), queries)
        say("mcp: the same in process")
        b_store, b_recall, b_hits = await _in_process(settings, _payloads(calls), queries)
    finally:
        await server.stop()
    notes = {"memories": n, "calls": calls, "hits_mcp": m_hits, "hits_baseline": b_hits}
    figures = []
    rows = (
        ("mcp memory_store", "until ack", m_store, b_store, TARGET_STORE_P50_MS),
        ("mcp memory_recall", f"{n:,} memories", m_recall, b_recall, TARGET_RECALL_P50_MS),
    )
    for name, what, mcp_t, base_t, target in rows:
        for q, goal in ((50, target), (99, None)):
            figures.append(
                Figure(
                    metric=f"{name} p{q} ({what}, {calls} calls)",
                    unit="ms",
                    hivebrain=percentile(mcp_t, q) * 1000,
                    baseline=percentile(base_t, q) * 1000,
                    target=goal,
                    higher_is_better=False,
                    notes=notes,
                )
            )
    return figures
