"""Exact top-k by cosine in SQLite with sqlite-vec: a scan with vec_distance_cosine over the
stored blobs vs a vec0 virtual table (KNN query). Usage: python spikes/vectors/exact.py N [DIM]"""
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlite_vec

from hivebrain.projections.sqlite import connect

n = int(sys.argv[1])
dim = int(sys.argv[2]) if len(sys.argv) > 2 else 384
k = 10
rng = np.random.default_rng(1)
vecs = rng.standard_normal((n, dim)).astype("<f4")
queries = rng.standard_normal((30, dim)).astype("<f4")
tmp = Path(tempfile.mkdtemp())
conn = connect(tmp / "x.db")
conn.enable_load_extension(True)
sqlite_vec.load(conn)
conn.enable_load_extension(False)
conn.execute("CREATE TABLE e (entity TEXT, model TEXT, vector BLOB, PRIMARY KEY (entity, model))")
conn.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{dim}] distance_metric=cosine)")
conn.execute("BEGIN")
conn.executemany("INSERT INTO e VALUES (?, 'm', ?)", ((f"id{i}", v.tobytes()) for i, v in enumerate(vecs)))
t = time.perf_counter()
conn.executemany("INSERT INTO v(rowid, embedding) VALUES (?, ?)", ((i + 1, v.tobytes()) for i, v in enumerate(vecs)))
ins = time.perf_counter() - t
conn.execute("COMMIT")


def timed(sql):
    out = []
    res = []
    for q in queries:
        t = time.perf_counter()
        res.append(conn.execute(sql, (q.tobytes(), k)).fetchall())
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out), max(out), res


scan = timed("SELECT rowid, vec_distance_cosine(vector, ?) d FROM e WHERE model = 'm' ORDER BY d LIMIT ?")
knn = timed("SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = ?")
same = sum(len({r[0] for r in a} & {r[0] for r in b}) for a, b in zip(scan[2], knn[2])) / (k * len(queries))
print(f"n={n} dim={dim}: scan p50 {scan[0]:.1f} ms max {scan[1]:.1f}; vec0 p50 {knn[0]:.1f} ms max {knn[1]:.1f}; vec0 insert {ins:.2f}s; agreement {same:.2f}")
