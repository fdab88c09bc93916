"""Keyword baselines on the same labelled set: rank_bm25 (Okapi) and SQLite FTS5 bm25().

FTS5 gets the query terms OR-ed together (its default AND finds nothing for most paraphrases),
with the porter stemmer, which is what a project would do with its existing sqlite projection.
"""

import json
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataset import DOCS, QUERIES  # noqa: E402

STOP = set(
    "a an the of to in on for and or is are was were be by with what which who how where when why "
    "do does did i my me we our it its this that from at as can each every there their".split()
)


def toks(s):
    return [t for t in re.findall(r"[a-z0-9]+", s.lower()) if t not in STOP]


def score(ranks):
    n = len(ranks)
    return {
        "recall@1": round(sum(r <= 1 for r in ranks) / n, 3),
        "recall@5": round(sum(r <= 5 for r in ranks) / n, 3),
        "mrr": round(sum(1.0 / r for r in ranks) / n, 3),
        "misses@1": [i for i, r in enumerate(ranks) if r > 1],
    }


out = {}
try:
    from rank_bm25 import BM25Okapi

    bm = BM25Okapi([toks(d) for d in DOCS])
    ranks = []
    for q, gold in QUERIES:
        s = bm.get_scores(toks(q))
        order = sorted(range(len(DOCS)), key=lambda i: -s[i])
        ranks.append(order.index(gold) + 1)
    out["rank_bm25"] = score(ranks)
except ImportError:
    pass

db = sqlite3.connect(":memory:")
db.execute("CREATE VIRTUAL TABLE d USING fts5(body, tokenize='porter unicode61')")
db.executemany("INSERT INTO d(rowid, body) VALUES (?, ?)", [(i, t) for i, t in enumerate(DOCS)])
ranks = []
for q, gold in QUERIES:
    expr = " OR ".join(f'"{t}"' for t in toks(q))
    hits = [
        r[0] for r in db.execute("SELECT rowid FROM d WHERE d MATCH ? ORDER BY bm25(d)", (expr,))
    ]
    # a doc with no matching term is ranked after all hits (worst case: last)
    ranks.append(hits.index(gold) + 1 if gold in hits else len(DOCS))
out["sqlite_fts5_or"] = score(ranks)
print(json.dumps(out))
