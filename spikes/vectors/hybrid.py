"""Hybrid recall latency over N memories with DIM-d vectors (one model), and recall@10 of the
ANN path against the exact scan.

    python spikes/vectors/hybrid.py [N] [DIM] [DB]

Vectors: 500 Gaussian clusters (spread 0.5) so that neighbours exist, as with real embeddings;
queries: a stored vector plus noise, with 1-3 content words drawn as `bench/recall.py` does
(`Corpus.query`), so the keyword half is the one that bench measures. recall@10 is checked on
the first 100 queries (two exact scans each), outside the timings.
"""
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import Corpus, percentile
from hivebrain.events import Event
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.memory import SPACES, MemoryStored
from hivebrain.projections import ProjectionStore
from hivebrain.projections.memory_queries import Filters
from hivebrain.projections.recall import recall
from hivebrain.projections.vectors import VectorSearch

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
DIM = int(sys.argv[2]) if len(sys.argv) > 2 else 384
DB = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(f"/tmp/hybrid-{N}-{DIM}/p.db")
MODEL = "bench-model"
Q = 300

rng = np.random.default_rng(5)
centres = rng.standard_normal((500, DIM)).astype("<f4")
vectors = (centres[rng.integers(0, 500, N)] + 0.5 * rng.standard_normal((N, DIM))).astype("<f4")
corpus = Corpus(seed=3)
pick = random.Random(3)
texts = [corpus.text() for _ in range(N)]

fresh = not DB.exists()
store = ProjectionStore(DB)
if fresh:
    t = time.perf_counter()
    for start in range(0, N, 5000):
        events = []
        for i in range(start, min(N, start + 5000)):
            events.append(Event.new(MemoryStored(text=texts[i], space=pick.choice(SPACES)),
                                    node="bench", lamport=2 * i + 1, entity=f"m{i}", ts=1.7e9 + i))
            events.append(Event.new(EmbeddingComputed(model=MODEL, dim=DIM, vector=vectors[i].tobytes(),
                                                      content_hash="h"),
                                    node="bench", lamport=2 * i + 2, entity=f"m{i}"))
        store.apply_events(events)
    print(f"applied {2 * N} events in {time.perf_counter() - t:.1f} s")
t = time.perf_counter()
ann = store.vectors.index(MODEL)
print(f"index ready (built {ann.builds}) in {time.perf_counter() - t:.1f} s")
store.close()

store = ProjectionStore(DB)
t = time.perf_counter()
store.vectors.index(MODEL)
print(f"index loaded on open in {time.perf_counter() - t:.2f} s")
exact = VectorSearch(store.connection, None, threshold=10**9)

words = Corpus(seed=4)
queries = []
for _ in range(Q):
    i = pick.randrange(N)
    queries.append((words.query(), (vectors[i] + 0.5 * rng.standard_normal(DIM)).astype("<f4").tobytes()))

for text, q in queries[:20]:  # warm-up
    store.recall(text, query_vector=q, model=MODEL)
lat, kw, vec_hits, hyb_hits = [], [], 0, 0
for n, (text, q) in enumerate(queries):
    t = time.perf_counter()
    store.search_memories(text, limit=10)
    kw.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    result = store.recall(text, query_vector=q, model=MODEL, limit=10)
    lat.append((time.perf_counter() - t) * 1000)
    assert result.mode_used == "hybrid"
    if n >= 100:
        continue
    near = {h.entity for h in store.search_vectors(q, MODEL, limit=10, kinds=("memory",))}
    truth = {h.entity for h in exact.search(q, MODEL, limit=10, kinds=("memory",))}
    vec_hits += len(near & truth)
    ref = recall(store.connection, exact, text, query_vector=q, model=MODEL, mode="hybrid",
                 limit=10, filters=Filters())
    hyb_hits += len({h.id for h in result.hits} & {h.id for h in ref.hits})
out = {
    "memories": N, "dim": DIM, "queries": Q,
    "hybrid_p50_ms": round(percentile(lat, 50), 2), "hybrid_p99_ms": round(percentile(lat, 99), 2),
    "keyword_only_p50_ms": round(percentile(kw, 50), 2), "keyword_only_p99_ms": round(percentile(kw, 99), 2),
    "vector_recall_at_10": vec_hits / 1000, "hybrid_top10_agreement": hyb_hits / 1000,
}
print(json.dumps(out))
