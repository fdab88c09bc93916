"""hivebrain beside peer memory libraries: the same ingest and recall workload on each.

Workload (`bench/hybrid.py`'s data): `n` corpus texts with 384-d unit vectors from 500
Gaussian clusters, ingested with their vectors; then queries (a stored vector plus noise, and
1-3 corpus words) asking for the 10 nearest. Every system gets the same texts, the same
precomputed vectors and the same query vectors; none embeds anything or downloads anything.
Ground truth for recall@10: numpy exact search over the same unit vectors (dot product =
cosine). Each query runs on every system in turn, so a burst of other load hits all of them.
Ingest runs one system after the other: the rates are noisier than the latencies.

How each system is configured (everything persisted on disk in a fresh temporary directory,
k = 10, all vectors float32):

- hivebrain: a `ProjectionStore`, a `memory.stored` and an `embedding.computed` event per
  item (built, validated, applied in batches of 5,000 items); above 20,000 vectors the
  hnswlib index (cosine, M 16, ef_construction 100, ef 128, 40 candidates re-ranked exactly)
  is built before the clock stops, so ingest means "searchable". Vector recall is
  `recall(mode="vector")`, hybrid `recall(mode="hybrid")` (FTS5 BM25 + vectors, RRF).
- chromadb (`PersistentClient`, telemetry off): one collection with `embedding_function=None`
  and HNSW `space` cosine, `max_neighbors` (M) 16, `ef_construction` 100, `ef_search` 128,
  the same as hivebrain's; `add` in batches of 5,000 with ids, documents and the vectors;
  `query(query_embeddings=..., n_results=10, include=["documents", "distances"])`. No
  keyword row: its `where_document` `$contains` is a substring filter, not ranked search.
- agentrecall-db (`Memory`, semantic on): its `embedder` is an object that returns the
  precomputed vectors (its Embedder protocol), `add_many` in batches of 1,000 (it commits per
  item). Vectors go into a sqlite-vec `vec0` table (exact KNN, L2 distance: the same order
  as cosine on unit vectors). Vector recall is `search("", k=10)` (no keywords, so only its
  vector KNN answers); hybrid is `search(words, k=10)` (FTS5 + vec0, RRF, as hivebrain).
  Its `sqlite3` is pointed at the SQLite build hivebrain itself uses where this Python's
  stdlib module cannot load extensions (pysqlite3-binary), since sqlite-vec needs that.

Peers are the optional `bench` extra (`pip install -e '.[bench]'`); a missing one is named
on stderr and under the table, and its rows are left out. Considered and left out: mem0
(`mem0ai` pins protobuf below 7, a downgrade of what onnx uses here), another-brain (needs
Python 3.12).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from hivebrain.projections import sqlite_module

from .common import Figure, Progress, percentile, say
from .hybrid import (
    DIM,
    LIMIT,
    WARMUP,
    Dataset,
    Query,
    _recall,
    build_store,
    dataset,
    exact_top,
    queries,
)

INSTALL = "pip install -e '.[bench]'"
_not_installed: list[str] = []


def not_installed() -> list[str]:
    """The lines said about peers that were not installed, in the last `run`."""
    return list(_not_installed)


class Peer(Protocol):
    name: str

    def ingest(self, data: Dataset) -> None: ...

    def vector(self, q: Query) -> list[int]: ...

    def hybrid(self, q: Query) -> list[int] | None: ...


def _disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


# -- the peers --------------------------------------------------------------------------------


class Chroma:
    name = "chromadb"
    BATCH = 5000

    def __init__(self, root: Path) -> None:
        chromadb: Any = importlib.import_module("chromadb")
        config: Any = importlib.import_module("chromadb.config")
        self.client = chromadb.PersistentClient(
            path=str(root), settings=config.Settings(anonymized_telemetry=False)
        )
        self.collection = self.client.create_collection(
            "hivebrain-bench",
            embedding_function=None,
            configuration={
                "hnsw": {
                    "space": "cosine",
                    "max_neighbors": 16,
                    "ef_construction": 100,
                    "ef_search": 128,
                }
            },
        )

    def ingest(self, data: Dataset) -> None:
        n = len(data.texts)
        batch = min(self.BATCH, int(self.client.get_max_batch_size()))
        progress = Progress("peers: chromadb ingest", n)
        for start in range(0, n, batch):
            end = min(n, start + batch)
            self.collection.add(
                ids=[str(i) for i in range(start, end)],
                embeddings=data.vectors[start:end],
                documents=data.texts[start:end],
            )
            progress.update(end - start)
        progress.finish()

    def vector(self, q: Query) -> list[int]:
        found = self.collection.query(
            query_embeddings=q.vector[None, :],
            n_results=LIMIT,
            include=["documents", "distances"],
        )
        return [int(i) for i in found["ids"][0]]

    def hybrid(self, q: Query) -> list[int] | None:
        return None


class _Supplied:
    """agentrecall's Embedder protocol, answering with the vectors it was handed."""

    dim = DIM

    def __init__(self) -> None:
        self.pending: list[list[float]] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        out, self.pending = self.pending, []
        if len(out) != len(texts):
            raise AssertionError(f"{len(texts)} texts, {len(out)} vectors supplied")
        return out


class AgentRecall:
    name = "agentrecall-db"
    BATCH = 1000

    def __init__(self, root: Path) -> None:
        memory: Any = importlib.import_module("agentrecall")
        store: Any = importlib.import_module("agentrecall.store")
        store.sqlite3 = sqlite_module()  # a SQLite that can load sqlite-vec (see above)
        self.embedder = _Supplied()
        root.mkdir(parents=True, exist_ok=True)
        self.memory = memory.Memory(
            root / "agentrecall.db", embeddings=True, embedder=self.embedder
        )
        self.index: dict[int, int] = {}

    def ingest(self, data: Dataset) -> None:
        n = len(data.texts)
        progress = Progress("peers: agentrecall-db ingest", n)
        for start in range(0, n, self.BATCH):
            end = min(n, start + self.BATCH)
            self.embedder.pending = data.vectors[start:end].tolist()
            records = self.memory.add_many(data.texts[start:end])
            for i, record in enumerate(records, start=start):
                self.index[int(record.id)] = i
            progress.update(end - start)
        progress.finish()

    def _search(self, text: str, q: Query) -> list[int]:
        self.embedder.pending = [q.vector.tolist()]
        return [self.index[int(hit.id)] for hit in self.memory.search(text, k=LIMIT)]

    def vector(self, q: Query) -> list[int]:
        return self._search("", q)

    def hybrid(self, q: Query) -> list[int] | None:
        return self._search(q.text, q)


PEERS: dict[str, Callable[[Path], Peer]] = {"chromadb": Chroma, "agentrecall-db": AgentRecall}


# -- the run ----------------------------------------------------------------------------------


class Side:
    """One system's timings over the queries."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ingest_per_s = 0.0
        self.disk_mb = 0.0
        self.vector: list[float] = []
        self.hybrid: list[float] = []
        self.found = 0

    def recall_at_10(self) -> float:
        return self.found / (LIMIT * max(1, len(self.vector)))


def _open_peers(root: Path) -> list[Peer]:
    _not_installed.clear()
    found: list[Peer] = []
    for name, make in PEERS.items():
        try:
            found.append(make(root / name))
        except ImportError as exc:
            line = f"peer {name} not installed: {INSTALL} ({exc})"
            say(line)
            _not_installed.append(f"peer {name} not installed: {INSTALL}")
    return found


def _timed(call: Callable[[Query], list[int] | None], q: Query) -> tuple[float, list[int] | None]:
    started = time.perf_counter()
    out = call(q)
    return time.perf_counter() - started, out


def run(scratch: Path, n: int, n_queries: int) -> list[Figure]:
    opened = _open_peers(scratch)
    if not opened:
        return []
    say(f"peers: {n:,} items with {DIM}-d vectors, {n_queries} queries")
    data = dataset(n)
    qs = queries(data, n_queries)
    truth = [{int(i) for i in exact_top(data.vectors, q.vector)} for q in qs]

    ours = Side("hivebrain")
    store, ids, seconds = build_store(scratch / "hivebrain" / "p.db", data, "peers: hivebrain")
    ours.ingest_per_s = n / seconds
    ours.disk_mb = _disk_mb(scratch / "hivebrain")
    index = {entity: i for i, entity in enumerate(ids)}

    def hive_vector(q: Query) -> list[int]:
        return [index[e] for e in _recall(store, q, "vector")]

    def hive_hybrid(q: Query) -> list[int]:
        return [index[e] for e in _recall(store, q, "hybrid")]

    sides: list[tuple[Side, Callable[[Query], list[int]], Callable[[Query], list[int] | None]]]
    sides = [(ours, hive_vector, hive_hybrid)]
    for peer in opened:
        side = Side(peer.name)
        started = time.perf_counter()
        peer.ingest(data)
        side.ingest_per_s = n / (time.perf_counter() - started)
        side.disk_mb = _disk_mb(scratch / peer.name)
        sides.append((side, peer.vector, peer.hybrid))
    try:
        for q in qs[:WARMUP]:
            for _, vector, hybrid in sides:
                vector(q)
                hybrid(q)
        for q, exact in zip(qs, truth, strict=True):
            for side, vector, hybrid in sides:
                seconds, near = _timed(vector, q)
                side.vector.append(seconds)
                side.found += len(set(near or ()) & exact)
                seconds, fused = _timed(hybrid, q)
                if fused is not None:
                    side.hybrid.append(seconds)
    finally:
        store.close()
    for side, _, _ in sides:
        say(
            f"peers: {side.name}: ingest {side.ingest_per_s:,.0f}/s, vector p50 "
            f"{percentile(side.vector, 50) * 1000:.2f} ms, recall@10 {side.recall_at_10():.3f}"
        )
    return _figures(n, n_queries, ours, [s for s, _, _ in sides[1:]])


def _figures(n: int, n_queries: int, ours: Side, peers: list[Side]) -> list[Figure]:
    what = f"{n:,} items, {n_queries} queries, k={LIMIT}"
    notes = {"items": n, "queries": n_queries, "dim": DIM, "k": LIMIT}
    figures: list[Figure] = []
    for peer in peers:
        rows: list[tuple[str, str, float, float]] = [
            (
                f"ingest with vectors until searchable ({n:,} items)",
                "/s",
                ours.ingest_per_s,
                peer.ingest_per_s,
            ),
        ]
        for q in (50, 99):
            rows.append(
                (
                    f"vector recall p{q} ({what})",
                    "ms",
                    percentile(ours.vector, q) * 1000,
                    percentile(peer.vector, q) * 1000,
                )
            )
        rows.append(
            (
                f"vector recall@10 vs numpy exact ({what})",
                "fraction",
                ours.recall_at_10(),
                peer.recall_at_10(),
            )
        )
        if peer.hybrid:
            for q in (50, 99):
                rows.append(
                    (
                        f"hybrid recall p{q} ({what})",
                        "ms",
                        percentile(ours.hybrid, q) * 1000,
                        percentile(peer.hybrid, q) * 1000,
                    )
                )
        rows.append((f"on disk ({n:,} items)", "MB", ours.disk_mb, peer.disk_mb))
        figures += [
            Figure(metric, unit, mine, theirs, None, True, notes, peer=peer.name)
            for metric, unit, mine, theirs in rows
        ]
    return figures
