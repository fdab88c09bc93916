"""Write-to-searchable: from `remember` on a node until vector recall on that node finds it.

One in-process node (its own nats-server, file-backed) runs the embedder actor with the local
model. Memories are written one at a time, each when the previous one was found; for each, the
clock runs from the publish until the node's projection has its vector (polled every 2 ms on a
connection of its own), then a vector recall with that vector must return it. Baseline, in the
same run: from the same publish until the memory is keyword-searchable (the projection applied
it), which every write pays anyway.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hivebrain.actors import EmbedderActor
from hivebrain.config import load_settings
from hivebrain.embedding.local import LocalMiniLM
from hivebrain.events import Event
from hivebrain.events.memory import MemoryStored
from hivebrain.node.node import Node
from hivebrain.projections.sqlite import connect
from hivebrain.transport.server import free_port

from .common import NODE, Corpus, Figure, Progress, percentile, say

TARGET_P99_MS = 1000.0
WARM_UP = 10


async def _until(check: str, entity: str, conn: object, timeout: float = 10.0) -> float:
    query = getattr(conn, "execute")  # noqa: B009 - a pysqlite3 or sqlite3 connection
    deadline = time.perf_counter() + timeout
    while query(check, (entity,)).fetchone() is None:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{entity} not searchable within {timeout}s")
        await asyncio.sleep(0.002)
    return time.perf_counter()


async def run(root: Path, n: int) -> list[Figure]:
    settings = load_settings(
        data_dir=str(root / "node"),
        node=NODE,
        nats_url=None,
        port=free_port(),
        nats_binary=None,
        json_output=False,
        env={},
    )
    embedder = await asyncio.to_thread(LocalMiniLM, root / "models")
    node = Node(settings, actors=[EmbedderActor(embedder)])
    await node.start()
    assert node.bus is not None and node.clock is not None and node.store is not None
    publisher = await node.bus.publisher()
    conn = connect(settings.db_path)
    corpus = Corpus(seed=11)
    keyword_ms: list[float] = []
    vector_ms: list[float] = []
    progress = Progress("searchable", n)
    try:
        for i in range(WARM_UP + n):
            text = corpus.text()
            event = Event.new(MemoryStored(text=text), node=NODE, lamport=node.clock.tick())
            started = time.perf_counter()
            await publisher.publish_wait(event)
            applied = await _until("SELECT 1 FROM memories WHERE id = ?", event.entity, conn)
            found = await _until(
                "SELECT 1 FROM embeddings WHERE entity = ? AND model = '" + embedder.model_id + "'",
                event.entity,
                conn,
            )
            (vector,) = await embedder.embed([text])
            hits = node.store.search_vectors(vector, embedder.model_id, limit=1, all_agents=True)
            if not hits or hits[0].entity != event.entity:
                raise AssertionError(f"vector recall did not find {event.entity}")
            if i >= WARM_UP:
                keyword_ms.append((applied - started) * 1000)
                vector_ms.append((found - started) * 1000)
                progress.update()
        progress.finish()
    finally:
        conn.close()
        await publisher.close()
        await node.stop()
    say(
        f"searchable: vector p50 {percentile(vector_ms, 50):.0f} ms, "
        f"p99 {percentile(vector_ms, 99):.0f} ms"
    )
    notes = {"memories": n, "model": embedder.model_id}
    return [
        Figure(
            "write-to-searchable p50 (vector)",
            "ms",
            percentile(vector_ms, 50),
            percentile(keyword_ms, 50),
            None,
            False,
            notes,
        ),
        Figure(
            "write-to-searchable p99 (vector)",
            "ms",
            percentile(vector_ms, 99),
            percentile(keyword_ms, 99),
            TARGET_P99_MS,
            False,
            notes,
        ),
    ]
