"""hnswlib parameters on clustered vectors: build time and recall@10 (40 candidates re-ranked
exactly, as vectors.py does). python spikes/vectors/params.py N DIM M EFC [threads]"""
import sys
import time

import hnswlib
import numpy as np

n, dim, m, efc = (int(a) for a in sys.argv[1:5])
threads = int(sys.argv[5]) if len(sys.argv) > 5 else -1
rng = np.random.default_rng(5)
centres = rng.standard_normal((500, dim)).astype("f4")
x = (centres[rng.integers(0, 500, n)] + 0.5 * rng.standard_normal((n, dim))).astype("f4")
q = (x[rng.integers(0, n, 200)] + 0.5 * rng.standard_normal((200, dim))).astype("f4")
t = time.perf_counter()
ix = hnswlib.Index(space="cosine", dim=dim)
ix.init_index(max_elements=n, ef_construction=efc, M=m)
ix.add_items(x, np.arange(n), num_threads=threads)
build = time.perf_counter() - t
xn = x / np.linalg.norm(x, axis=1, keepdims=True)
qn = q / np.linalg.norm(q, axis=1, keepdims=True)
s = qn @ xn.T
true = np.argsort(-s, axis=1)[:, :10]
for ef in (64, 128, 256):
    ix.set_ef(ef)
    t = time.perf_counter()
    labels, _ = ix.knn_query(q, k=40, num_threads=1)
    dt = (time.perf_counter() - t) / len(q) * 1000
    rec = [len(set(c[np.argsort(-s[i, c])][:10]) & set(true[i])) / 10 for i, c in enumerate(labels)]
    print(f"n={n} dim={dim} M={m} efc={efc} build {build:.1f}s ef={ef} recall@10 {np.mean(rec):.4f} query {dt:.2f} ms")
