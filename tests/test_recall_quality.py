"""Recall quality with the real local embedder on a labelled corpus.

`data/corpus/` holds short homelab notes, scripts and measurements; `data/questions.json`
asks about them the way a user would, in other words than the text's (few shared keywords),
each question labelled with the file that answers it. The corpus goes through the real ingest
path into a running node; every chunk is embedded with the local MiniLM and its vector
published as an `embedding.computed` event; then each question is recalled with its own
vector. recall@5: the share of questions for which one of the 5 hits comes from the labelled
file.

The figures are printed; the measured ones and the threshold are in README.md (recall).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from hivebrain.brain import Brain
from hivebrain.embedding import Embedder, embedder_for
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.ingest import ingest
from hivebrain.node import Node
from hivebrain.projections.recall import RecallMode

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "corpus"
QUESTIONS = DATA / "questions.json"
K = 5
#: Hybrid recall@5 must reach this: measured 0.974 (37 of 38), keyword-only 0.842, vector-only
#: 0.974; the margin allows for other CPUs' int8 kernels moving a borderline question.
HYBRID_AT_LEAST = 0.85


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The local MiniLM, its graph built once per session into a temporary models folder."""
    return embedder_for("local", cache_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture
async def brain(node: Node) -> AsyncIterator[Brain]:
    assert node.bus is not None
    b = Brain(node.settings, node.bus, await node.bus.publisher())
    yield b
    await b.publisher.close()
    b.store.close()


async def publish_chunk_vectors(brain: Brain, embedder: Embedder) -> int:
    """Embed every knowledge chunk the node holds and publish the vectors as
    `embedding.computed` events (entity = chunk id), as the node's embedder does; returns
    how many. The events are applied by the node before this returns."""
    rows = brain.store.connection.execute(
        "SELECT id, text, content_hash FROM knowledge_chunks ORDER BY id"
    ).fetchall()
    vectors = await embedder.embed([text for _, text, _ in rows])
    for (chunk, _, content_hash), vector in zip(rows, vectors, strict=True):
        payload = EmbeddingComputed(
            model=embedder.model_id,
            dim=embedder.dim,
            vector=vector,
            content_hash=content_hash,
        )
        written = await brain.publish(payload, entity=chunk)
        assert written.applied
    return len(rows)


def recall_at_k(
    brain: Brain,
    questions: Sequence[tuple[str, str, bytes]],
    model: str,
    mode: RecallMode,
) -> tuple[float, list[str]]:
    """(recall@K over `questions` (text, labelled file, query vector), the questions missed)."""
    missed = []
    for text, label, vector in questions:
        result = brain.store.recall(text, query_vector=vector, model=model, mode=mode, limit=K)
        assert result.mode_used == mode, result.note
        files = {
            Path(hit.source).relative_to(CORPUS.resolve()).as_posix()
            for hit in result.hits
            if hit.kind == "knowledge" and hit.source is not None
        }
        if label not in files:
            missed.append(f"{text} -> {label}")
    return 1 - len(missed) / len(questions), missed


async def test_hybrid_recall_at_5_on_paraphrased_questions(
    brain: Brain, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = json.loads(QUESTIONS.read_text())
    files = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file())
    assert {q["source"] for q in asked} == set(files)  # every file is asked about

    summary = await ingest(brain, [CORPUS])
    assert summary.ingested == len(files) and summary.applied
    assert await publish_chunk_vectors(brain, embedder) == summary.chunks

    questions = [
        (q["question"], q["source"], (await embedder.embed([q["question"]]))[0]) for q in asked
    ]
    figures = {}
    misses = {}
    for mode in ("hybrid", "keyword", "vector"):
        figures[mode], misses[mode] = recall_at_k(brain, questions, embedder.model_id, mode)
    with capsys.disabled():
        print(
            f"\nrecall@{K} over {len(questions)} questions, {summary.chunks} chunks: "
            + ", ".join(f"{mode} {value:.3f}" for mode, value in figures.items())
        )
        for line in misses["hybrid"]:
            print(f"  hybrid missed: {line}")
    assert figures["hybrid"] >= HYBRID_AT_LEAST, misses["hybrid"]
    assert figures["hybrid"] > figures["keyword"], figures
