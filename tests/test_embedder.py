"""The embedder actor on real nodes: vectors for every text, the work shared between embedder
nodes, the cache by content hash, offline sweeps on a cut-off leaf, a model that is down, and
rebuilds that never call a model."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from hive import Hive, Writer, wait_until
from local import local_settings
from test_embedding import FakeOllama

from hivebrain.actors import ActorSetup, EmbedderActor, actors_for
from hivebrain.actors.embedder import texts_of
from hivebrain.embedding import query_vector
from hivebrain.embedding.config import EmbedderConfig
from hivebrain.embedding.ollama import OllamaEmbedder
from hivebrain.events import Event, Payload, VersionRef
from hivebrain.events.knowledge import ChunkAdded
from hivebrain.events.memory import MemoryEdited, MemoryForgotten, MemoryStored
from hivebrain.events.observation import ObservationWritten
from hivebrain.node.node import Node
from hivebrain.projections.store import ProjectionStore

MODEL = "counting@test"


class CountingEmbedder:
    """A deterministic embedder that remembers every text it was asked for."""

    model_id = MODEL
    dim = 8

    def __init__(self, delay: float = 0.0) -> None:
        self.texts: list[str] = []
        self.delay = delay

    async def embed(self, texts: Sequence[str]) -> list[bytes]:
        self.texts += texts
        if self.delay:
            await asyncio.sleep(self.delay)
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype("<f4")
            out.append((v / np.linalg.norm(v)).astype("<f4").tobytes())
        return out


def embedding_count(node: Node, model: str = MODEL) -> int:
    assert node.store is not None
    row = node.store.connection.execute(
        "SELECT count(*) FROM embeddings WHERE model = ?", (model,)
    ).fetchone()
    return int(row[0])


def vectors(node: Node) -> dict[str, bytes]:
    assert node.store is not None
    rows = node.store.connection.execute(
        "SELECT entity, vector FROM embeddings WHERE model = ?", (MODEL,)
    ).fetchall()
    return {entity: bytes(vector) for entity, vector in rows}


def texts(prefix: str, n: int) -> list[Payload]:
    return [MemoryStored(text=f"{prefix} remembers thing number {i}") for i in range(n)]


def test_texts_of_takes_each_kind_and_the_last_text_per_entity() -> None:
    def ev(payload: Payload, entity: str) -> Event:
        return Event.new(payload, node="n1", lamport=1, entity=entity)

    base = ev(MemoryStored(text="first"), "m1")
    batch = [
        base,
        ev(MemoryStored(user_message="hi", response="hello"), "m2"),
        ev(
            ChunkAdded(
                document="d",
                source="a.md",
                chunk_index=0,
                total_chunks=1,
                text="chunk",
                content_hash="h",
            ),
            "c1",
        ),
        ev(ObservationWritten(text="warm in the garage"), "o1"),
        ev(MemoryForgotten(), "m3"),
        ev(MemoryEdited(base=VersionRef.of(base.stamp), text="second"), "m1"),
    ]
    found = {t.entity: t.text for t in texts_of(batch)}
    assert found == {"m2": "hi\nhello", "c1": "chunk", "o1": "warm in the garage", "m1": "second"}


async def start_node(home: Path, embedder: CountingEmbedder, **options: float) -> Node:
    node = Node(local_settings(home), actors=[EmbedderActor(embedder, **options)])
    await node.start()
    return node


async def test_every_text_gets_one_vector_and_repeats_come_from_the_cache(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    node = await start_node(tmp_path / "home", embedder)
    try:
        writer = Writer(node)
        first = await writer.write(texts("n1", 30))
        await wait_until(lambda: embedding_count(node) == 30, 20)
        # The same texts under new ids, and an observation with one of them: no model call.
        again = await writer.write(
            [*texts("n1", 30), ObservationWritten(text="n1 remembers thing number 3")]
        )
        await wait_until(lambda: embedding_count(node) == 61, 20)
        assert len(embedder.texts) == 30
        got = vectors(node)
        assert got[again[3].entity] == got[first[3].entity] == got[again[30].entity]
        # An edit changes the text: one more model call, and the vector follows the text.
        assert node.store is not None
        row = node.store.memory(first[0].entity)
        assert row is not None and row.version is not None
        edit = MemoryEdited(base=VersionRef.of(row.version), text="an entirely new text")
        await Writer(node).write([edit], entity=first[0].entity)
        await wait_until(lambda: len(embedder.texts) == 31, 20)
        assert embedder.texts[-1] == "an entirely new text"
    finally:
        await node.stop()


async def test_rebuild_reproduces_vectors_and_search_without_any_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    embedder = CountingEmbedder()
    node = await start_node(home, embedder)
    try:
        await Writer(node).write(texts("n1", 40))
        await wait_until(lambda: embedding_count(node) == 40, 20)
        before = vectors(node)
        assert node.store is not None
        query = before[next(iter(before))]
        hits = [h.entity for h in node.store.search_vectors(query, MODEL, limit=10)]
        digest = node.store.digest()
    finally:
        await node.stop()
    # Rebuild with no embedder anywhere, then run the node (and its embedder) again.
    with ProjectionStore(home / "hivebrain.db") as store:
        store.reset()
    node = await start_node(home, embedder)
    try:
        await wait_until(lambda: embedding_count(node) == 40, 20)
        await asyncio.sleep(1.0)  # room for a wrong re-embedding to show up
        assert node.store is not None
        assert vectors(node) == before
        assert [h.entity for h in node.store.search_vectors(query, MODEL, limit=10)] == hits
        assert node.store.digest() == digest
        assert len(embedder.texts) == 40  # never embedded again
    finally:
        await node.stop()


async def test_two_embedder_nodes_share_the_work_and_embed_each_text_once(tmp_path: Path) -> None:
    counters = {"hub": CountingEmbedder(delay=0.05), "leaf1": CountingEmbedder(delay=0.05)}
    hive = Hive(
        tmp_path,
        leaves=("leaf1",),
        actors=lambda name: [EmbedderActor(counters[name])],
    )
    await hive.start()
    try:
        hub, leaf = hive.nodes["hub"], hive.nodes["leaf1"]
        await asyncio.gather(
            Writer(hub).write(texts("hub", 150)), Writer(leaf).write(texts("leaf1", 150))
        )
        for node in (hub, leaf):
            await wait_until(lambda n=node: embedding_count(n) == 300, 60)  # type: ignore[misc]
        done = {name: len(c.texts) for name, c in counters.items()}
        assert sum(done.values()) == 300, done  # none twice
        assert all(done.values()), done  # both took a share
        assert len(set(counters["hub"].texts) | set(counters["leaf1"].texts)) == 300
        assert vectors(hub) == vectors(leaf)
    finally:
        await hive.stop()


async def test_a_cut_off_leaf_embeds_its_own_texts_and_the_hive_converges(tmp_path: Path) -> None:
    counters = {"hub": CountingEmbedder(), "leaf1": CountingEmbedder()}
    hive = Hive(
        tmp_path,
        leaves=("leaf1",),
        actors=lambda name: [EmbedderActor(counters[name], offline_after=0.5, sweep_every=0.2)],
    )
    await hive.start()
    try:
        hub, leaf = hive.nodes["hub"], hive.nodes["leaf1"]
        await wait_until(leaf.online, 10)
        await hive.proxies["leaf1"].cut()
        await wait_until(lambda: not leaf.online(), 10)
        await Writer(leaf).write(texts("offline", 20))
        await wait_until(lambda: embedding_count(leaf) == 20, 30)  # while cut off
        assert len(counters["leaf1"].texts) == 20
        await hive.proxies["leaf1"].restore()
        await Writer(hub).write(texts("hub", 10))
        for node in (hub, leaf):
            await wait_until(lambda n=node: embedding_count(n) == 30, 60)  # type: ignore[misc]
        await wait_until(lambda: hub.store.digest() == leaf.store.digest(), 30)  # type: ignore[union-attr]
    finally:
        await hive.stop()


async def test_a_model_that_is_down_makes_events_wait_and_nothing_is_lost(tmp_path: Path) -> None:
    fake = FakeOllama()
    port = fake.server.server_address[1]
    fake.server.server_close()  # the port is known, nobody listens yet
    embedder = OllamaEmbedder(f"http://127.0.0.1:{port}", "all-minilm", timeout=2.0)
    node = Node(local_settings(tmp_path / "home"), actors=[EmbedderActor(embedder)])
    await node.start()
    server = None
    try:
        written = await Writer(node).write(texts("n1", 12))
        assert node.actors is not None
        await wait_until(lambda: node.actors.stats()[0].failures >= 1, 20)  # type: ignore[union-attr]
        assert embedding_count(node, embedder.model_id) == 0
        from http.server import ThreadingHTTPServer

        fake.server = ThreadingHTTPServer(("127.0.0.1", port), fake.server.RequestHandlerClass)
        server = threading.Thread(target=fake.server.serve_forever, args=(0.05,), daemon=True)
        server.start()
        await wait_until(lambda: embedding_count(node, embedder.model_id) == 12, 60)
        texts_sent = [t for r in fake.requests for t in r["input"]]
        assert sorted(set(texts_sent)) == sorted(e.payload.content() for e in written)  # type: ignore[attr-defined]
    finally:
        await node.stop()
        if server is not None:
            fake.server.shutdown()
            fake.server.server_close()


def test_nodes_toml_actors_are_built_from_the_node_config(tmp_path: Path) -> None:
    setup = ActorSetup(tmp_path, EmbedderConfig(backend="ollama", url="http://127.0.0.1:9"))
    [actor] = actors_for(["embedder"], setup)
    assert isinstance(actor, EmbedderActor)
    assert actor.embedder.model_id == "all-minilm@ollama"
    assert actor.shared_key() == "all-minilm-ollama"


async def test_recall_says_why_it_answers_with_keywords_only(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    assert settings.embedder is None  # no node has run here
    assert await query_vector(settings, "where is the lantern") == (
        None,
        "keyword search only: this node runs no embedder",
    )
    closed = FakeOllama()
    url = f"http://127.0.0.1:{closed.server.server_address[1]}"
    closed.server.server_close()
    down = settings.model_copy(
        update={"embedder": EmbedderConfig(backend="ollama", url=url, timeout=2.0)}
    )
    found, why = await query_vector(down, "where is the lantern")
    assert found is None and why.startswith("keyword search only: the query could not be embedded")
    assert "\n" not in why
