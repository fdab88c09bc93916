"""Throughput of session configurations on the bench's texts, interleaved in one process.

Usage (repo root): .venv/bin/python spikes/embedder/speed.py GRAPH.onnx CONFIG... [--reps N]
CONFIG = threads,workers,batch,skipln: intra-op threads per run, worker threads running
batches side by side on the one session, batch size, 1 = keep onnxruntime's
SkipLayerNormalization fusion. E.g. `2,1,32,1` (the previous embedder) `1,2,8,0` (the current).
Prints wall texts/s (median, min-max) and texts per CPU-second of this process (user + sys,
all threads): the second is much less affected by other load on a shared machine.
GRAPH is the int8 file LocalMiniLM builds (`<models>/all-minilm-l6-v2-int8pc.onnx`).
"""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import psutil
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.common import Corpus  # noqa: E402
from hivebrain.embedding.local import weights_dir  # noqa: E402

N = 1000


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
    if "--reps" in sys.argv:
        args.remove(str(reps))
    graph, configs = args[0], [tuple(int(x) for x in a.split(",")) for a in args[1:]]
    corpus = Corpus(seed=7)
    texts = [corpus.text() for _ in range(N)]
    tok = Tokenizer.from_file(str(weights_dir() / "tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.no_padding()  # tokenizer.json pads to 128 by default
    sessions: dict[tuple[int, int], ort.InferenceSession] = {}
    pools = {w: ThreadPoolExecutor(w) for w in {c[1] for c in configs}}

    def session(threads: int, skipln: int) -> ort.InferenceSession:
        if (threads, skipln) not in sessions:
            o = ort.SessionOptions()
            o.intra_op_num_threads = threads
            o.inter_op_num_threads = 1
            o.enable_cpu_mem_arena = False
            off = [] if skipln else ["SkipLayerNormFusion"]
            sessions[threads, skipln] = ort.InferenceSession(
                graph, o, providers=["CPUExecutionProvider"], disabled_optimizers=off
            )
        return sessions[threads, skipln]

    def run(threads: int, workers: int, batch: int, skipln: int) -> None:
        s = session(threads, skipln)
        ids = [e.ids for e in tok.encode_batch(texts)]
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), texts[i]))

        def one(start: int) -> None:
            chunk = order[start : start + batch]
            width = len(ids[chunk[-1]])
            a = np.zeros((len(chunk), width), np.int64)
            m = np.zeros((len(chunk), width), np.int64)
            for r, i in enumerate(chunk):
                a[r, : len(ids[i])] = ids[i]
                m[r, : len(ids[i])] = 1
            s.run(["embedding"], {"input_ids": a, "attention_mask": m})

        list(pools[workers].map(one, range(0, len(order), batch)))

    proc = psutil.Process()
    results: dict[tuple[int, ...], tuple[list[float], list[float]]] = {c: ([], []) for c in configs}
    for c in configs:
        run(*c)  # warm-up
    load = os.getloadavg()[0]
    for _ in range(reps):
        for c in configs:
            t, c0 = time.perf_counter(), proc.cpu_times()
            run(*c)
            dt, c1 = time.perf_counter() - t, proc.cpu_times()
            results[c][0].append(N / dt)
            results[c][1].append(N / (c1.user + c1.system - c0.user - c0.system))
    print(f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}, {reps} runs each, {N} texts")
    for c, (wall, cpu) in results.items():
        print(
            f"threads={c[0]} workers={c[1]} batch={c[2]} skipln={c[3]}: wall {np.median(wall):.0f}/s "
            f"({min(wall):.0f}-{max(wall):.0f}), {np.median(cpu):.0f} texts/CPU-s"
        )


if __name__ == "__main__":
    main()
