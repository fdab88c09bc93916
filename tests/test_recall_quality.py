"""Recall quality with the real local embedder on a labelled corpus.

`data/corpus/` holds short homelab notes, scripts and measurements; `data/questions.json`
asks about them the way a user would, in other words than the text's (few shared keywords),
each question labelled with the file that answers it. The corpus goes through the real ingest
path into a running node whose embedder actor (the local MiniLM) gives every chunk its vector;
then each question is recalled with its own vector. recall@5: the share of questions for
which one of the 5 hits comes from the labelled file.

The figures are printed; the measured ones and the threshold are in README.md (recall).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from hive import wait_until
from local import local_settings

from hivebrain.actors import EmbedderActor
from hivebrain.app.brain import Brain
from hivebrain.app.ingest import ingest
from hivebrain.embedding import Embedder, embedder_for
from hivebrain.node.node import Node
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
async def brain(tmp_path: Path, embedder: Embedder) -> AsyncIterator[Brain]:
    """A running node with the embedder actor, and a brain writing to it."""
    node = Node(local_settings(tmp_path / "home"), actors=[EmbedderActor(embedder)])
    await node.start()
    assert node.bus is not None
    b = Brain(node.settings, node.bus, await node.bus.publisher())
    yield b
    await b.publisher.close()
    b.store.close()
    await node.stop()


async def vectors_for_every_chunk(brain: Brain, model: str, timeout: float = 120.0) -> int:
    """Wait until the embedder gave every knowledge chunk a vector; returns how many."""

    def missing() -> int:
        row = brain.store.connection.execute(
            "SELECT count(*) FROM knowledge_chunks c WHERE NOT EXISTS (SELECT 1 FROM "
            "embeddings e WHERE e.entity = c.id AND e.model = ?)",
            (model,),
        ).fetchone()
        return int(row[0])

    await wait_until(lambda: missing() == 0, timeout)
    row = brain.store.connection.execute("SELECT count(*) FROM knowledge_chunks").fetchone()
    return int(row[0])


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
    assert await vectors_for_every_chunk(brain, embedder.model_id) == summary.chunks

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
