"""Measure one embedder candidate in a fresh process and print one JSON line.

Usage: python bench.py CANDIDATE [OUT_NPY_DIR]
Figures: import+load seconds, RSS after load, RSS after the runs and peak RSS (ru_maxrss),
recall@1/@5 on dataset.py, texts/s at batch 32 and batch 1 on 10-30-word texts.
"""

import json
import os
import resource
import sys
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataset import DOCS, QUERIES, short_texts  # noqa: E402

name = sys.argv[1]
npy_dir = sys.argv[2] if len(sys.argv) > 2 else None
proc = psutil.Process()
mb = lambda b: round(b / 2**20, 1)  # noqa: E731
res = {"candidate": name, "rss_base_mb": mb(proc.memory_info().rss)}

t0 = time.perf_counter()
import candidates  # noqa: E402

enc_docs, enc_queries, dim = candidates.LOADERS[name]()
res["load_s"] = round(time.perf_counter() - t0, 2)
res["rss_after_load_mb"] = mb(proc.memory_info().rss)
res["dim"] = int(dim)

# ---- quality
import numpy as np  # noqa: E402

D = enc_docs(DOCS, 32)
Q = enc_queries([q for q, _ in QUERIES], 32)
res["dim"] = int(D.shape[1])
S = Q @ D.T
ranks = []
for qi, (_, gold) in enumerate(QUERIES):
    order = np.argsort(-S[qi])
    ranks.append(int(np.where(order == gold)[0][0]) + 1)
res["recall@1"] = round(sum(r <= 1 for r in ranks) / len(ranks), 3)
res["recall@5"] = round(sum(r <= 5 for r in ranks) / len(ranks), 3)
res["mrr"] = round(float(np.mean([1.0 / r for r in ranks])), 3)
res["misses@1"] = [i for i, r in enumerate(ranks) if r > 1]
if npy_dir:
    os.makedirs(npy_dir, exist_ok=True)
    np.save(os.path.join(npy_dir, f"{name}_docs.npy"), D)
    np.save(os.path.join(npy_dir, f"{name}_queries.npy"), Q)

# ---- throughput, batch 32 (time-bounded)
texts = short_texts(1024)
words = [len(t.split()) for t in texts]
res["words_min_max_mean"] = [min(words), max(words), round(sum(words) / len(words), 1)]
enc_docs(texts[:32], 32)  # warm-up
res["loadavg_1m_start"] = round(os.getloadavg()[0], 2)
n, t0, c0 = 0, time.perf_counter(), time.process_time()
for i in range(0, len(texts), 32):
    enc_docs(texts[i : i + 32], 32)
    n += 32
    if time.perf_counter() - t0 > 60:
        break
res["texts_per_s_b32"] = round(n / (time.perf_counter() - t0), 1)
# CPU seconds consumed by the process (all threads): insensitive to other load on the machine.
res["texts_per_cpu_s_b32"] = round(n / (time.process_time() - c0), 1)

# ---- throughput, batch 1 (time-bounded)
n, t0, c0 = 0, time.perf_counter(), time.process_time()
for t in texts[:200]:
    enc_docs([t], 1)
    n += 1
    if time.perf_counter() - t0 > 30:
        break
res["texts_per_s_b1"] = round(n / (time.perf_counter() - t0), 1)
res["texts_per_cpu_s_b1"] = round(n / (time.process_time() - c0), 1)
res["loadavg_1m_end"] = round(os.getloadavg()[0], 2)

res["rss_after_runs_mb"] = mb(proc.memory_info().rss)
res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(res))
