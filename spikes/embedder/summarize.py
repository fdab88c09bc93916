"""Median (min-max) per candidate and venv from results.jsonl -> markdown table on stdout."""

import json
import statistics
import sys
from collections import defaultdict

rows = [
    json.loads(line)
    for line in open(sys.argv[1] if len(sys.argv) > 1 else "results.jsonl")
    if line.strip()
]
by = defaultdict(list)
for r in rows:
    by[(r["candidate"], r["venv"])].append(r)


def med(rs, k, nd=1):
    v = [r[k] for r in rs]
    return round(statistics.median(v), nd)


def rng(rs, k):
    v = [r[k] for r in rs]
    return f"{statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f})"


print(
    "| candidate | venv | n | dim | R@1 | R@5 | MRR | load s | RSS load MB | RSS after MB | peak MB "
    "| texts/s b32 | texts/s b1 | texts/CPU-s b32 | load avg |"
)
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (c, v), rs in by.items():
    print(
        f"| {c} | {v} | {len(rs)} | {rs[0]['dim']} | {rs[0]['recall@1']:.3f} | {rs[0]['recall@5']:.3f} "
        f"| {rs[0]['mrr']:.3f} | {med(rs, 'load_s', 2)} | {med(rs, 'rss_after_load_mb')} "
        f"| {med(rs, 'rss_after_runs_mb')} | {med(rs, 'peak_rss_mb')} | {rng(rs, 'texts_per_s_b32')} "
        f"| {rng(rs, 'texts_per_s_b1')} | {med(rs, 'texts_per_cpu_s_b32')} "
        f"| {min(r['loadavg_1m_start'] for r in rs):.1f}-{max(r['loadavg_1m_end'] for r in rs):.1f} |"
    )
