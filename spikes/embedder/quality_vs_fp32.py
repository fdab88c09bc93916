"""Cosine between hivebrain's local embedder and the fp32 model on ~200 varied texts.

Usage (repo root): .venv/bin/python spikes/embedder/quality_vs_fp32.py
The fp32 reference is the same network built by hivebrain/embedding/graph.py without
quantization, one text per run (no padding, no batch effects). The int8 side is LocalMiniLM
itself (its batching, sorting and session options), plus the previous configuration (one
session, 2 intra-op threads, default fusions, batches of 32) for comparison.
"""

import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.append(str(Path(__file__).parent))
from dataset import DOCS, QUERIES  # noqa: E402

from bench.common import Corpus  # noqa: E402
from hivebrain.embedding.graph import build_graph  # noqa: E402
from hivebrain.embedding.local import LocalMiniLM, weights_dir  # noqa: E402


def sample() -> list[str]:
    """30 notes, 30 questions, bench-style memories, very short, code, other languages, long."""
    c, rnd = Corpus(seed=11), random.Random(5)
    texts = list(DOCS) + [q for q, _ in QUERIES] + [c.text() for _ in range(90)]
    texts += ["ok", "NAS", "why?", "restart nginx", "disk full", "hello world"]
    texts += [
        "def f(x):\n    return x * 2  # doubles",
        "SELECT id, text FROM memories WHERE space = 'home' ORDER BY ts DESC LIMIT 10;",
        "docker compose up -d && docker logs -f hub",
        '{"node": "pi5", "lamport": 42, "type": "memory.stored"}',
        "Der Server im Keller ist zu heiß.",
        "Le NAS est presque plein.",
        "El router se reinicia cada noche.",
        "サーバーが停止しました",
        "温度传感器坏了",
    ]
    long = " ".join(c.text() for _ in range(30))  # > 256 tokens: truncated
    texts += [long, long[:1000], long[:600]]
    while len(texts) < 200:  # shuffled word salad + a memory: odd inputs
        words = c.text().split()
        rnd.shuffle(words)
        texts.append(" ".join(words) + " " + c.text())
    return texts


def fp32_reference(texts: list[str], tmp: Path) -> np.ndarray:
    from tokenizers import Tokenizer

    path = tmp / "fp32.onnx"
    onnx.save(build_graph(weights_dir() / "model.safetensors"), str(path))
    tok = Tokenizer.from_file(str(weights_dir() / "tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.no_padding()  # tokenizer.json pads to 128 by default
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = []
    for t in texts:
        ids = np.array([tok.encode(t).ids], dtype=np.int64)
        rows.append(session.run(["embedding"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0])
    return np.array(rows)


def previous_config(texts: list[str], graph: Path) -> np.ndarray:
    """The embedder before this change: 2 intra-op threads, default fusions, batches of 32."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(weights_dir() / "tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.no_padding()  # tokenizer.json pads to 128 by default
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    ids = [e.ids for e in tok.encode_batch(texts)]
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), texts[i]))
    out = np.empty((len(ids), 384), np.float32)
    for start in range(0, len(order), 32):
        chunk = order[start : start + 32]
        width = max(len(ids[i]) for i in chunk)
        a = np.zeros((len(chunk), width), np.int64)
        m = np.zeros((len(chunk), width), np.int64)
        for r, i in enumerate(chunk):
            a[r, : len(ids[i])] = ids[i]
            m[r, : len(ids[i])] = 1
        out[chunk] = session.run(["embedding"], {"input_ids": a, "attention_mask": m})[0]
    return out


def report(name: str, v: np.ndarray, ref: np.ndarray) -> None:
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cos = (v * ref).sum(1)
    print(
        f"{name}: n={len(cos)} mean {cos.mean():.4f} median {np.median(cos):.4f} "
        f"p5 {np.percentile(cos, 5):.4f} min {cos.min():.4f}"
    )


def main() -> None:
    texts = sample()
    with tempfile.TemporaryDirectory() as tmp:
        ref = fp32_reference(texts, Path(tmp))
        embedder = LocalMiniLM(Path(tmp) / "models")
        ours = np.array([np.frombuffer(b, "<f4") for b in embedder.embed_sync(texts)])
        report(f"{embedder.model_id} vs fp32", ours, ref)
        report("previous config (b32, 2 threads, all fusions) vs fp32", previous_config(texts, embedder.graph_path), ref)
        shuffled = texts[::-1]
        again = np.array([np.frombuffer(b, "<f4") for b in embedder.embed_sync(shuffled)])[::-1]
        print("same vectors for the texts in reverse order:", np.array_equal(again, ours))


if __name__ == "__main__":
    main()
