"""Local embedding throughput: short texts per second through `LocalMiniLM.embed`.

Texts are the corpus's memories (60-200 characters). The graph is built into a temporary models
folder first (timed apart). Baseline: the same graph file in a plain onnxruntime session
(intra-op threads = cores, default options and fusions), called directly with batches of the
same size in input order, each padded by the tokenizer to its longest text (no sorting by
length, no worker threads, no thread hop). Both are run alternately, three times each, and the
medians are reported, so a burst of other load on the machine hits both.

RSS is the process's after loading and after the first pass of `embed` over the texts (before
the baseline session exists; the final RSS with both sessions is in the notes).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from tokenizers import Tokenizer

from hivebrain.embedding.local import BATCH, MAX_TOKENS, LocalMiniLM, weights_dir, workers

from .common import Corpus, Figure, say

TARGET_PER_S = 200.0


def _mb() -> float:
    return float(psutil.Process().memory_info().rss) / 1e6


class _Baseline:
    """onnxruntime as its documentation shows it: one session, one thread per core."""

    def __init__(self, graph: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = workers()
        self.session: Any = ort.InferenceSession(
            str(graph), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(weights_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def __call__(self, texts: list[str]) -> float:
        started = time.perf_counter()
        for start in range(0, len(texts), BATCH):
            encodings = self.tokenizer.encode_batch(texts[start : start + BATCH])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
        return len(texts) / (time.perf_counter() - started)


async def _ours(embedder: LocalMiniLM, texts: list[str]) -> float:
    started = time.perf_counter()
    await embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started)


async def run(models: Path, n: int) -> list[Figure]:
    corpus = Corpus(seed=7)
    texts = [corpus.text() for _ in range(n)]
    started = time.perf_counter()
    embedder = LocalMiniLM(models)
    build_s = time.perf_counter() - started
    rss_loaded = _mb()
    say(f"embed: graph built and loaded in {build_s:.1f}s, RSS {rss_loaded:.0f} MB")
    await embedder.embed(texts[:BATCH])  # warm-up
    ours = [await _ours(embedder, texts)]
    rss_after = _mb()
    baseline_run = _Baseline(embedder.graph_path)
    baseline_run(texts[:BATCH])  # warm-up
    base = [baseline_run(texts)]
    for _ in range(2):  # alternate, so a burst of other load hits both
        ours.append(await _ours(embedder, texts))
        base.append(baseline_run(texts))
    hivebrain, baseline = float(np.median(ours)), float(np.median(base))
    say(f"embed: {hivebrain:,.0f}/s (baseline {baseline:,.0f}/s), RSS {rss_after:.0f} MB")
    return [
        Figure(
            metric=f"local embed, short texts ({n:,}, batch {BATCH}, RSS {rss_after:.0f} MB)",
            unit="/s",
            hivebrain=hivebrain,
            baseline=baseline,
            target=TARGET_PER_S,
            higher_is_better=True,
            notes={
                "runs_per_s": ours,
                "baseline_runs_per_s": base,
                "build_and_load_s": build_s,
                "rss_after_load_mb": rss_loaded,
                "rss_after_runs_mb": rss_after,
                "rss_end_with_baseline_mb": _mb(),
                "workers": workers(),
                "model": embedder.model_id,
            },
        )
    ]
