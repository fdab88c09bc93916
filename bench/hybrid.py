"""Keyword, vector and hybrid recall latency over memories with vectors, through
`ProjectionStore.recall` (modes keyword, vector and hybrid), and the node's memory.

Data: memories with the corpus's texts (60-200 characters) and one 384-d vector each from
500 Gaussian clusters (spread 0.5, then unit length), so that neighbours exist as with real
embeddings (`spikes/vectors/hybrid.py`). The store is built once per size in a temporary
directory: a `memory.stored` and an `embedding.computed` event per memory, applied in
batches of 5,000 memories; above 20,000 vectors the hnswlib index is built before the
queries (it would be built by the first query otherwise). Queries: a stored vector plus
noise (the spike's, relative to the vectors' length) and 1-3 words from `Corpus.query`.
Recall asks for 10 hits of every agent (`all_agents`), every kind (memories, knowledge
chunks, observations: only memories exist here).

Baselines, in the same run, on the same data and queries (each query runs every side in
turn, so a burst of other load hits all of them):
- keyword: a bare FTS5 table with the same texts and OR-query, `ORDER BY rank LIMIT 10`
  (as `bench/recall.py`);
- vector: numpy exact search, the (n, 384) float32 matrix of unit vectors times the query
  (a dot product is the cosine here), `argpartition` top 10, sorted;
- hybrid: the sum of the two, per query.

recall@10: of hivebrain's vector mode against numpy exact, over every timed query.
Memory: a separate process opens the largest store, runs 100 hybrid recalls, and reports its
RSS (psutil) before opening it (interpreter and hivebrain imported) and after the queries.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil

from hivebrain.events import Event
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.memory import MemoryStored
from hivebrain.projections import ProjectionStore
from hivebrain.projections.recall import RecallMode

from .common import NODE, Corpus, Figure, Progress, percentile, say
from .recall import _fill_bare, _or_expression

MODEL = "bench-384"
DIM = 384
CLUSTERS = 500
SPREAD = 0.5
LIMIT = 10
WARMUP = 20
BATCH = 5000  # memories per `apply_events` call (two events each)
RSS_QUERIES = 100

TARGET_SIZE = 100_000  # the latency targets are set over this many memories
TARGET_HYBRID_P50_MS = 10.0
TARGET_HYBRID_P99_MS = 30.0
TARGET_RECALL_AT_10 = 0.95

Vectors = npt.NDArray[np.float32]
ROOT = Path(__file__).resolve().parent.parent


# -- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    vectors: Vectors  # (n, DIM), unit length


@dataclass(frozen=True)
class Query:
    text: str
    vector: Vectors  # (DIM,), unit length


def _unit(x: Vectors) -> Vectors:
    unit: Vectors = (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
    return unit


def dataset(n: int, seed: int = 5) -> Dataset:
    """`n` corpus texts with clustered unit vectors (deterministic)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM), dtype=np.float32)
    raw = centres[rng.integers(0, CLUSTERS, n)]
    raw += SPREAD * rng.standard_normal((n, DIM), dtype=np.float32)
    corpus = Corpus(seed=3)
    return Dataset([corpus.text() for _ in range(n)], _unit(raw))


def queries(data: Dataset, n: int, seed: int = 6) -> list[Query]:
    """`n` queries: a stored vector plus noise, and 1-3 corpus words."""
    rng = np.random.default_rng(seed)
    words = Corpus(seed=4)
    picks = rng.integers(0, len(data.texts), n)
    # The spike adds N(0, SPREAD) per dimension to vectors of length ~sqrt((1 + SPREAD^2) DIM).
    scale = SPREAD / np.sqrt((1 + SPREAD**2) * DIM)
    noisy = data.vectors[picks] + scale * rng.standard_normal((n, DIM), dtype=np.float32)
    return [Query(words.query(), v) for v in _unit(noisy)]


def exact_top(matrix: Vectors, query: Vectors, k: int = LIMIT) -> npt.NDArray[np.intp]:
    """Indices of the `k` rows of `matrix` nearest to `query` (unit vectors: dot product)."""
    scores = matrix @ query
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def build_store(path: Path, data: Dataset, label: str) -> tuple[ProjectionStore, list[str], float]:
    """A projection holding `data` (a memory and its vector each): the store, the memory ids
    in data order, and the seconds it took (events built, applied, ANN index built)."""
    n = len(data.texts)
    store = ProjectionStore(path)
    ids: list[str] = []
    progress = Progress(label, n)
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        events: list[Event] = []
        for i in range(start, min(n, start + BATCH)):
            memory = Event.new(
                MemoryStored(text=data.texts[i], source="bench"),
                node=NODE,
                lamport=2 * i + 1,
                ts=1_750_000_000.0 + i,
            )
            vector = EmbeddingComputed(
                model=MODEL, dim=DIM, vector=data.vectors[i].tobytes(), content_hash=f"h{i}"
            )
            events.append(memory)
            events.append(
                Event.new(vector, node=NODE, lamport=2 * i + 2, entity=memory.entity, ts=memory.ts)
            )
            ids.append(memory.entity)
        store.apply_events(events)
        progress.update(len(events) // 2)
    progress.finish()
    store.vectors.index(MODEL)  # hnswlib above the threshold: built now, not by a query
    return store, ids, time.perf_counter() - started


# -- timing -----------------------------------------------------------------------------------


def _recall(store: ProjectionStore, q: Query, mode: RecallMode) -> list[str]:
    result = store.recall(
        q.text,
        query_vector=q.vector.tobytes(),
        model=MODEL,
        mode=mode,
        limit=LIMIT,
        all_agents=True,
    )
    if result.mode_used != mode:
        raise AssertionError(f"recall answered {result.mode_used} for {mode}: {result.note}")
    return [hit.id for hit in result.hits]


def _bare_sql() -> str:
    return "SELECT rowid, text, -bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?"


@dataclass
class Timings:
    keyword: list[float]
    vector: list[float]
    hybrid: list[float]
    fts: list[float]
    numpy: list[float]
    recall_at_10: float
    hits: dict[str, int]


def _clock(call: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = call(*args)
    return time.perf_counter() - started, out


def time_queries(
    store: ProjectionStore,
    ids: list[str],
    bare: sqlite3.Connection,
    matrix: Vectors,
    qs: list[Query],
) -> Timings:
    """Every query through hivebrain's three modes and both baselines, in turn."""
    sql = _bare_sql()
    index = {entity: i for i, entity in enumerate(ids)}

    def fts(q: Query) -> list[Any]:
        return bare.execute(sql, (_or_expression(q.text), LIMIT)).fetchall()

    for q in qs[:WARMUP]:
        for mode in ("keyword", "vector", "hybrid"):
            _recall(store, q, mode)
        fts(q)
        exact_top(matrix, q.vector)
    t = Timings([], [], [], [], [], 0.0, {"keyword": 0, "vector": 0, "hybrid": 0, "fts": 0})
    found = 0
    for q in qs:
        s, words = _clock(_recall, store, q, "keyword")
        t.keyword.append(s)
        s, near = _clock(_recall, store, q, "vector")
        t.vector.append(s)
        s, fused = _clock(_recall, store, q, "hybrid")
        t.hybrid.append(s)
        s, rows = _clock(fts, q)
        t.fts.append(s)
        s, truth = _clock(exact_top, matrix, q.vector)
        t.numpy.append(s)
        found += len({index[e] for e in near if e in index} & {int(i) for i in truth})
        for name, got in (("keyword", words), ("vector", near), ("hybrid", fused), ("fts", rows)):
            t.hits[name] += len(got)
    t.recall_at_10 = found / (LIMIT * len(qs))
    return t


# -- memory of a node holding the store -------------------------------------------------------


def _rss_child(db: Path, n: int) -> None:
    """Run in a fresh process: RSS before opening `db`, then after `n` hybrid recalls."""
    process = psutil.Process()
    before = process.memory_info().rss
    store = ProjectionStore(db)
    rows = store.connection.execute(
        "SELECT vector FROM embeddings WHERE model = ? ORDER BY rowid LIMIT ?", (MODEL, n)
    ).fetchall()
    rng = np.random.default_rng(7)
    words = Corpus(seed=8)
    scale = SPREAD / np.sqrt((1 + SPREAD**2) * DIM)
    for (blob,) in rows:
        vector = np.frombuffer(blob, dtype="<f4") + scale * rng.standard_normal(DIM)
        store.recall(
            words.query(),
            query_vector=_unit(vector.astype(np.float32)).tobytes(),
            model=MODEL,
            all_agents=True,
        )
    after = process.memory_info().rss
    ann = store.vectors.index(MODEL)
    print(
        json.dumps(
            {
                "before_mb": before / 1e6,
                "after_mb": after / 1e6,
                "queries": len(rows),
                "index_rebuilt": bool(getattr(ann, "builds", 0)),  # hnswlib only
            }
        )
    )
    store.close()


def node_rss(db: Path, n: int = RSS_QUERIES) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.hybrid", "--rss", str(db), str(n)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return report


# -- the figures ------------------------------------------------------------------------------


def _latency(
    name: str,
    n: int,
    n_queries: int,
    ours: list[float],
    base: list[float],
    target: float | None,
    q: int,
    notes: dict[str, Any],
) -> Figure:
    return Figure(
        metric=f"{name} recall p{q} ({n:,} memories with vectors, {n_queries} queries)",
        unit="ms",
        hivebrain=percentile(ours, q) * 1000,
        baseline=percentile(base, q) * 1000,
        target=target,
        higher_is_better=False,
        notes=notes,
    )


def run_size(scratch: Path, n: int, n_queries: int) -> tuple[list[Figure], Path]:
    say(f"hybrid: {n:,} memories with {DIM}-d vectors")
    data = dataset(n)
    qs = queries(data, n_queries)
    db = scratch / f"hybrid-{n}.db"
    store, ids, build_s = build_store(db, data, f"hybrid: applying {n:,} memories + vectors")
    bare = _fill_bare(scratch / f"hybrid-{n}-bare.db", data.texts)
    try:
        t = time_queries(store, ids, bare, data.vectors, qs)
    finally:
        store.close()
        bare.close()
    summed = [a + b for a, b in zip(t.fts, t.numpy, strict=True)]
    notes: dict[str, Any] = {
        "memories": n,
        "dim": DIM,
        "queries": n_queries,
        "build_s": build_s,
        "hits": t.hits,
        "vector_recall_at_10": t.recall_at_10,
        "example_queries": [q.text for q in qs[:5]],
    }
    say(
        f"hybrid: {n:,}: built in {build_s:.1f}s; hybrid p50 "
        f"{percentile(t.hybrid, 50) * 1000:.2f} ms, p99 {percentile(t.hybrid, 99) * 1000:.2f} ms, "
        f"recall@10 {t.recall_at_10:.3f}"
    )
    at_target = n >= TARGET_SIZE
    figures = []
    for name, ours, base in (
        ("keyword", t.keyword, t.fts),
        ("vector", t.vector, t.numpy),
        ("hybrid", t.hybrid, summed),
    ):
        for q in (50, 99):
            target = None
            if name == "hybrid" and at_target:
                target = TARGET_HYBRID_P50_MS if q == 50 else TARGET_HYBRID_P99_MS
            figures.append(_latency(name, n, n_queries, ours, base, target, q, notes))
    figures.append(
        Figure(
            metric=f"vector recall@10 vs numpy exact ({n:,} memories, {n_queries} queries)",
            unit="fraction",
            hivebrain=t.recall_at_10,
            baseline=1.0,
            target=TARGET_RECALL_AT_10,
            higher_is_better=True,
            notes=notes,
        )
    )
    return figures, db


def run(scratch: Path, sizes: tuple[int, ...], n_queries: int) -> list[Figure]:
    figures: list[Figure] = []
    largest: Path | None = None
    for n in sizes:
        found, db = run_size(scratch, n, n_queries)
        figures += found
        largest = db
    if largest is not None:
        n = sizes[-1]
        rss = node_rss(largest)
        say(f"hybrid: RSS {rss['before_mb']:.0f} MB before opening, {rss['after_mb']:.0f} MB after")
        figures.append(
            Figure(
                metric=(
                    f"node RSS, {n:,}-memory store open after {rss['queries']} hybrid recalls "
                    "(baseline: same process before opening it)"
                ),
                unit="MB",
                hivebrain=rss["after_mb"],
                baseline=rss["before_mb"],
                target=None,
                higher_is_better=False,
                notes={"memories": n, **rss},
            )
        )
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--rss":
        _rss_child(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit("usage: python -m bench.hybrid --rss DB QUERIES (run by bench.run)")
