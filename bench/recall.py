"""Keyword recall: latency of `ProjectionStore.search_memories` over a store of memories.

Queries are 1-3 content words drawn with the corpus's own word frequencies (so common terms
such as service names come up as often as they appear in memories).
Baseline: the same texts in a bare FTS5 table (same tokenizer, same SQLite, same connection
settings) and a plain `MATCH` ordered by BM25 rank, LIMIT 10, with the same OR-expression.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from pathlib import Path

from hivebrain.events import Event
from hivebrain.events.memory import SPACES, MemoryStored
from hivebrain.projections import ProjectionStore, connect

from .common import NODE, Corpus, Figure, Progress, percentile, say

TARGET_P50_MS = 5.0
LIMIT = 10
WARMUP = 20
BATCH = 5000
TOKENIZE = "porter unicode61 remove_diacritics 2"
_WORD = re.compile(r"\w+", re.UNICODE)


def _memories(n: int) -> list[Event]:
    corpus = Corpus(seed=3)
    rng = random.Random(3)
    return [
        Event.new(
            MemoryStored(
                text=corpus.text(),
                tags=corpus.tags(),
                agent=rng.choice(("default", "coder", "assistant", "observer")),
                space=rng.choice(SPACES),
                source="bench",
            ),
            node=NODE,
            lamport=i,
            ts=1_750_000_000.0 + i,
        )
        for i in range(1, n + 1)
    ]


def _fill_store(path: Path, events: list[Event]) -> ProjectionStore:
    store = ProjectionStore(path)
    progress = Progress("recall: applying memories", len(events))
    for i in range(0, len(events), BATCH):
        store.apply_events(events[i : i + BATCH])
        progress.update(len(events[i : i + BATCH]))
    progress.finish()
    return store


def _fill_bare(path: Path, texts: list[str]) -> sqlite3.Connection:
    conn = connect(path)
    conn.execute(f"CREATE VIRTUAL TABLE docs USING fts5(text, tokenize = '{TOKENIZE}')")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO docs (text) VALUES (?)", ((t,) for t in texts))
    conn.execute("COMMIT")
    return conn


def _or_expression(query: str) -> str:
    words = dict.fromkeys(w.lower() for w in _WORD.findall(query))
    return " OR ".join(f'"{w}"' for w in words)


def _time_store(store: ProjectionStore, queries: list[str]) -> tuple[list[float], int]:
    for q in queries[:WARMUP]:
        store.search_memories(q, limit=LIMIT)
    times, hits = [], 0
    for q in queries:
        started = time.perf_counter()
        found = store.search_memories(q, limit=LIMIT)
        times.append(time.perf_counter() - started)
        hits += len(found)
    return times, hits


def _time_bare(conn: sqlite3.Connection, queries: list[str]) -> tuple[list[float], int]:
    sql = "SELECT rowid, text, -bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?"
    for q in queries[:WARMUP]:
        conn.execute(sql, (_or_expression(q), LIMIT)).fetchall()
    times, hits = [], 0
    for q in queries:
        started = time.perf_counter()
        rows = conn.execute(sql, (_or_expression(q), LIMIT)).fetchall()
        times.append(time.perf_counter() - started)
        hits += len(rows)
    return times, hits


def run(scratch: Path, n: int, n_queries: int) -> list[Figure]:
    say(f"recall: generating {n:,} memories")
    events = _memories(n)
    store = _fill_store(scratch / "recall.db", events)
    texts = [e.payload.content() for e in events if isinstance(e.payload, MemoryStored)]
    bare = _fill_bare(scratch / "recall-bare.db", texts)
    query_corpus = Corpus(seed=4)
    queries = [query_corpus.query() for _ in range(n_queries)]
    try:
        hive_t, hive_hits = _time_store(store, queries)
        base_t, base_hits = _time_bare(bare, queries)
    finally:
        store.close()
        bare.close()
    if hive_hits != base_hits:
        say(f"recall: note: {hive_hits} hits from hivebrain, {base_hits} from bare FTS5")
    notes = {
        "memories": n,
        "queries": n_queries,
        "hits_hivebrain": hive_hits,
        "hits_baseline": base_hits,
        "example_queries": queries[:5],
    }
    figures = []
    for q, target in ((50, TARGET_P50_MS), (99, None)):
        figures.append(
            Figure(
                metric=f"recall p{q} ({n:,} memories, {n_queries} queries)",
                unit="ms",
                hivebrain=percentile(hive_t, q) * 1000,
                baseline=percentile(base_t, q) * 1000,
                target=target,
                higher_is_better=False,
                notes=notes,
            )
        )
    return figures
