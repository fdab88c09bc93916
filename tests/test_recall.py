"""Recall over every kind: memories, knowledge chunks and observations, ranked together by
keywords, vectors or both, with the filters each kind has; and the `recall` command's output.
Real SQLite files; the CLI runs in process on a projection written directly."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from hivebrain.events import Event
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.knowledge import ChunkAdded, DocumentIngested, KnowledgeRemoved
from hivebrain.events.memory import MemoryForgotten, MemoryStored
from hivebrain.events.observation import ObservationWritten, ReadingsAggregated
from hivebrain.projections import ProjectionStore
from hivebrain.projections.fts import match_query, pruned_match_query
from hivebrain.projections.memory_queries import Filters
from hivebrain.projections.recall import (
    RecallHit,
    RecallMode,
    RecallResult,
    keyword_ranking,
)
from hivebrain.projections.vectors import KINDS

MODEL = "test-model"
DIM = 16

#: entity -> (kind, author node, ts, basis index of its vector)
ENTITIES: dict[str, tuple[str, str, float, int]] = {
    "m1": ("memory", "n1", 1001.0, 0),
    "m2": ("memory", "n2", 1002.0, 1),
    "d1:0": ("knowledge", "n1", 1003.0, 2),
    "d1:1": ("knowledge", "n2", 1004.0, 3),
    "o1": ("observation", "n2", 1005.0, 4),
    "o2": ("observation", "n1", 1006.0, 5),
    "d2:0": ("knowledge", "n1", 1007.0, 6),  # its document is removed
    "m3": ("memory", "n1", 1008.0, 7),  # forgotten
}


def basis(i: int) -> bytes:
    out = np.full(DIM, 0.01, dtype="<f4")
    out[i] = 1.0
    return out.tobytes()


def event(n: int, payload: Any, entity: str, node: str = "n1", ts: float = 900.0) -> Event:
    return Event.new(payload, node=node, lamport=n, entity=entity, ts=ts)


def chunk(entity: str, n: int, index: int, total: int, text: str) -> Event:
    _, node, ts, _ = ENTITIES[entity]
    document = entity.split(":")[0]
    payload = ChunkAdded(
        document=document,
        source=f"/docs/{document}.md",
        chunk_index=index,
        total_chunks=total,
        text=text,
        content_hash=f"h-{entity}",
    )
    return event(n, payload, entity, node, ts)


def memory(entity: str, n: int, text: str, **fields: Any) -> Event:
    _, node, ts, _ = ENTITIES[entity]
    return event(n, MemoryStored(text=text, **fields), entity, node, ts)


def observation(entity: str, n: int, text: str, **fields: Any) -> Event:
    _, node, ts, _ = ENTITIES[entity]
    return event(n, ObservationWritten(text=text, **fields), entity, node, ts)


def corpus() -> list[Event]:
    """Every kind mentions the garage; each has its own vector, and one word of its own."""
    document = DocumentIngested(
        source="/docs/d1.md",
        title="Garage NAS",
        kind="markdown",
        content_hash="x",
        size=9,
        total_chunks=2,
    )
    gone = DocumentIngested(
        source="/docs/d2.md",
        title="Old",
        kind="markdown",
        content_hash="y",
        size=9,
        total_chunks=1,
    )
    window = ReadingsAggregated(
        source="garage.temperature",
        window_start=0.0,
        window_end=60.0,
        count=6,
        min=3.0,
        max=5.0,
        mean=4.0,
        unit="C",
    )
    events = [
        memory("m1", 1, "the garage door sensor is on gpio seventeen", tags=("gpio",)),
        memory("m2", 2, "the kitchen pi answers garage questions", space="working"),
        memory("m3", 3, "the garage used to have a freezer"),
        event(4, document, "d1"),
        chunk("d1:0", 11, 0, 2, "the garage nas scrubs its zfs pool every sunday"),
        chunk("d1:1", 12, 1, 2, "garage snapshots are kept for thirty days"),
        event(5, gone, "d2"),
        chunk("d2:0", 13, 0, 1, "the garage once had a tape drive"),
        event(6, window, "r1", "n2"),
        observation(
            "o1",
            7,
            "the garage is colder than usual",
            kind="temperature",
            readings=("r1",),
            model="qwen",
        ),
        observation("o2", 8, "the garage fan spins faster at noon"),
        event(40, KnowledgeRemoved(reason="gone"), "d2"),
        event(41, MemoryForgotten(), "m3"),
    ]
    for entity, (_, _, _, i) in ENTITIES.items():
        vector = EmbeddingComputed(model=MODEL, dim=DIM, vector=basis(i), content_hash="h")
        events.append(event(50 + i, vector, entity))
    return events


LIVE = {key for key in ENTITIES if key not in ("d2:0", "m3")}


@pytest.fixture(params=[10**6, 2], ids=["exact", "hnsw"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ProjectionStore:
    s = ProjectionStore(tmp_path / "p.db", vector_threshold=request.param)
    s.apply_events(corpus())
    request.addfinalizer(s.close)
    return s


def found(result: RecallResult) -> set[str]:
    return {hit.id for hit in result.hits}


def recall(store: ProjectionStore, text: str, vector: int | None, **kw: Any) -> RecallResult:
    query = None if vector is None else basis(vector)
    return store.recall(text, query_vector=query, model=MODEL, limit=20, **kw)


MODES: Sequence[RecallMode] = ("keyword", "vector", "hybrid")


def by_mode(store: ProjectionStore, **kw: Any) -> dict[RecallMode, set[str]]:
    """What each mode finds for "garage" (every entity's word) and a vector near none."""
    out = {}
    for mode in MODES:
        result = store.recall(
            "garage",
            query_vector=np.full(DIM, 0.1, "<f4").tobytes(),
            model=MODEL,
            limit=20,
            mode=mode,
            **kw,
        )
        assert result.mode_used == mode and result.note is None
        out[mode] = found(result)
    return out


def test_every_kind_is_recalled_in_every_mode(store: ProjectionStore) -> None:
    assert by_mode(store) == {mode: LIVE for mode in MODES}
    kinds = {hit.id: hit.kind for hit in recall(store, "garage", 0).hits}
    assert kinds == {key: ENTITIES[key][0] for key in LIVE}


def test_each_kind_is_found_by_its_words_and_by_its_vector(store: ProjectionStore) -> None:
    for entity, word in [("m1", "seventeen"), ("d1:0", "zfs"), ("o2", "noon")]:
        kind, _, _, i = ENTITIES[entity]
        [hit] = recall(store, word, None).hits  # keywords: only it has the word
        assert (hit.id, hit.kind) == (entity, kind)
        by_vector = recall(store, "unrelated words", i)  # no shared word: found by meaning
        assert by_vector.mode_used == "hybrid" and by_vector.hits[0].id == entity
        both = recall(store, f"garage {word}", i)
        assert both.hits[0].id == entity and both.hits[0].score > both.hits[1].score


def test_keyword_ranking_merges_the_kinds_by_bm25(store: ProjectionStore) -> None:
    result = recall(store, "garage zfs pool sunday", None, mode="keyword")
    assert result.hits[0].id == "d1:0"
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True) and len({h.kind for h in result.hits}) == 3


def test_type_restricts_the_kinds(store: ProjectionStore) -> None:
    only = {
        ("knowledge",): {"d1:0", "d1:1"},
        ("observation",): {"o1", "o2"},
        ("memory",): {"m1", "m2"},
        ("memory", "observation"): {"m1", "m2", "o1", "o2"},
    }
    for kinds, expected in only.items():
        assert by_mode(store, kinds=kinds) == {mode: expected for mode in MODES}


def test_node_and_time_filters_apply_to_every_kind(store: ProjectionStore) -> None:
    by_n2 = {key for key in LIVE if ENTITIES[key][1] == "n2"}
    assert by_n2 == {"m2", "d1:1", "o1"}
    assert by_mode(store, node="n2") == {mode: by_n2 for mode in MODES}
    window = {"m2", "d1:0", "d1:1", "o1"}  # ts 1002 .. 1005
    assert by_mode(store, since=1002.0, until=1006.0) == {mode: window for mode in MODES}
    assert by_mode(store, node="n1", since=1003.0) == {mode: {"d1:0", "o2"} for mode in MODES}


def test_memory_filters_leave_only_memories(store: ProjectionStore) -> None:
    shared = {key for key in LIVE if not key.startswith("m")}  # knowledge, observations
    assert shared and by_mode(store, agent="default") == {
        mode: {"m1", "m2"} | shared for mode in MODES
    }
    assert by_mode(store, agent="nobody") == {mode: shared for mode in MODES}
    assert by_mode(store, space="working") == {mode: {"m2"} for mode in MODES}
    assert by_mode(store, tags=["gpio"]) == {mode: {"m1"} for mode in MODES}
    none = store.recall(
        "garage", query_vector=basis(0), model=MODEL, tags=["gpio"], kinds=["knowledge"]
    )
    assert none.hits == [] and none.note is not None and "only match memories" in none.note


def test_removed_documents_and_forgotten_memories_stay_out(store: ProjectionStore) -> None:
    for mode in MODES:
        assert not found(recall(store, "tape freezer", 6, mode=mode)) & {"d2:0", "m3"}
        assert not found(recall(store, "tape freezer", 7, mode=mode)) & {"d2:0", "m3"}


def test_without_vectors_keywords_answer_every_kind_and_say_so(store: ProjectionStore) -> None:
    result = store.recall("garage", limit=20)
    assert result.mode_used == "keyword" and result.note is not None
    assert "no query vector" in result.note and found(result) == LIVE
    other = store.recall("garage", query_vector=basis(0), model="other", limit=20)
    assert other.mode_used == "keyword" and other.note is not None
    assert "no vectors for model other" in other.note and found(other) == LIVE


def test_hits_say_their_kind_and_where_they_come_from(store: ProjectionStore) -> None:
    hits = {hit.id: hit for hit in recall(store, "garage", None).hits}
    m1, chunk1, o1 = hits["m1"], hits["d1:1"], hits["o1"]
    assert (m1.kind, m1.origin, m1.agent, m1.tags, m1.node) == (
        "memory",
        "m1",
        "default",
        ("gpio",),
        "n1",
    )
    assert chunk1.kind == "knowledge" and chunk1.origin == "/docs/d1.md (chunk 2/2)"
    assert (chunk1.source, chunk1.chunk_index, chunk1.total_chunks) == ("/docs/d1.md", 1, 2)
    assert (chunk1.document, chunk1.title, chunk1.node) == ("d1", "Garage NAS", "n2")
    assert o1.kind == "observation" and o1.origin == "hive.n2.observation.o1" == o1.subject
    assert (o1.observation_kind, o1.readings, o1.model) == (
        "temperature",
        ("garage.temperature",),
        "qwen",
    )
    assert set(m1.as_dict()) == {
        *("kind", "id", "score", "text", "node", "ts", "lamport", "origin"),
        *("agent", "space", "tags", "strength", "forgotten"),
    }
    assert chunk1.as_dict()["source"] == "/docs/d1.md" and "agent" not in chunk1.as_dict()
    assert o1.as_dict()["readings"] == ["garage.temperature"] and "source" not in o1.as_dict()
    assert isinstance(o1, RecallHit)


# -- the recall command ----------------------------------------------------------------------


def hivebrain(home: Path, *args: str) -> tuple[str, str]:
    result = CliRunner().invoke(
        sys.modules["hivebrain.cli.main"].cli, ["--data-dir", str(home), "--node", "n1", *args]
    )
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    importlib.import_module("hivebrain.cli.main")  # the group, with its commands
    home = tmp_path / "home"
    home.mkdir()
    with ProjectionStore(home / "hivebrain.db") as s:
        s.apply_events(corpus())
    # The node runs an embedder, and the query vector it gives is o1's.
    (home / "node.json").write_text(json.dumps({"node": "n1", "embedder": {"backend": "local"}}))

    async def embed_query(_settings: object, _query: str) -> tuple[str, bytes]:
        return MODEL, basis(4)

    embedding = importlib.import_module("hivebrain.embedding")
    monkeypatch.setattr(embedding, "embed_query", embed_query)
    return home


def test_recall_command_shows_kind_and_origin(home: Path) -> None:
    out, err = hivebrain(home, "recall", "weather", "--limit", "20")  # no word in common
    assert err == ""
    first = out.splitlines()[0].split()
    assert first[1:3] == ["observation", "hive.n2.observation.o1"]  # by its vector
    lines = {line.split()[2]: line for line in out.splitlines()}
    assert set(lines) == {
        "m1",
        "m2",
        "/docs/d1.md",
        "hive.n1.observation.o2",
        "hive.n2.observation.o1",
    }
    assert "memory" in lines["m1"] and "[default/long_term] the garage door sensor" in lines["m1"]
    assert "#gpio" in lines["m1"]
    assert out.count("/docs/d1.md (chunk ") == 2 and "knowledge" in lines["/docs/d1.md"]
    assert "[temperature] the garage is colder than usual" in out

    rows = json.loads(hivebrain(home, "--json", "recall", "garage", "--type", "knowledge")[0])
    assert {(r["kind"], r["id"]) for r in rows} == {("knowledge", "d1:0"), ("knowledge", "d1:1")}
    assert {r["source"] for r in rows} == {"/docs/d1.md"} and {r["chunk_index"] for r in rows} == {
        0,
        1,
    }
    assert all(r["origin"].startswith("/docs/d1.md (chunk ") for r in rows)

    rows = json.loads(
        hivebrain(
            home,
            "recall",
            "garage",
            "--json",
            "--from-node",
            "n2",
            "--type",
            "observation",
            "--type",
            "memory",
        )[0]
    )
    assert {(r["kind"], r["id"]) for r in rows} == {("memory", "m2"), ("observation", "o1")}
    [o1] = [r for r in rows if r["kind"] == "observation"]
    assert o1["origin"] == o1["subject"] == "hive.n2.observation.o1" and o1["node"] == "n2"

    out, err = hivebrain(home, "recall", "garage", "--keyword", "--tag", "gpio")
    assert out.split()[1:3] == ["memory", "m1"] and len(out.splitlines()) == 1 and err == ""
    out, _ = hivebrain(home, "recall", "lighthouse", "--keyword")
    assert out.strip() == "nothing matches"


# -- common words in hybrid recall's keyword half --------------------------------------------

#: More memories than `fts.COMMON_MIN_DOCS`, so that words found in most of them are common.
MANY = 1500


def many_texts() -> list[str]:
    """Memory i holds "pi" (every one), "kitchen" (1,200), a form of "benchmark" (1,100),
    "zfs" (every 500th), "scrub" (every 300th), its own word, and 0-4 fillers (lengths
    differ, so BM25 scores do too)."""
    texts = []
    for i in range(MANY):
        words = ["pi", f"own{i}"]
        words += ["kitchen"] if i < 1200 else []
        words += ["benchmarking"] if i % 15 < 11 else []
        words += ["zfs"] if i % 500 == 0 else []
        words += ["scrub"] if i % 300 == 0 else []
        words += ["filler"] * (i % 5)
        texts.append(" ".join(words))
    return texts


def many_id(i: int) -> str:
    return f"c{i:05d}"


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectionStore]:
    """`MANY` memories (every 20th by agent "coder"), each with a vector of its own."""
    s = ProjectionStore(tmp_path_factory.mktemp("many") / "p.db")
    rng = np.random.default_rng(1)
    events = []
    for i, text in enumerate(many_texts()):
        agent = "coder" if i % 20 == 0 else "default"
        stored = MemoryStored(text=text, agent=agent)
        events.append(event(2 * i + 1, stored, many_id(i), ts=1000.0 + i))
        vector = rng.standard_normal(DIM).astype("<f4").tobytes()
        embedded = EmbeddingComputed(model=MODEL, dim=DIM, vector=vector, content_hash=f"h{i}")
        events.append(event(2 * i + 2, embedded, many_id(i)))
    s.apply_events(events)
    yield s
    s.close()


EVERYONE = Filters(all_agents=True)


def ranked(store: ProjectionStore, text: str, prune: bool, **kw: Any) -> list[str]:
    filters = kw.pop("filters", EVERYONE)
    rows = keyword_ranking(store.connection, text, KINDS, filters, kw.pop("depth", 40), prune=prune)
    return [key for _, key, _ in rows]


def test_common_words_are_left_out_of_the_hybrid_keyword_half(many: ProjectionStore) -> None:
    conn = many.connection
    assert pruned_match_query(conn, "memories_fts", "pi zfs") == '"zfs"'
    # "benchmarked" is found through its stem, as the index holds it ("benchmark").
    assert pruned_match_query(conn, "memories_fts", "Benchmarked ZFS") == '"zfs"'
    zfs = [many_id(i) for i in range(0, MANY, 500)]
    assert sorted(ranked(many, "pi zfs", prune=True)) == zfs  # only what "zfs" matches
    unpruned = ranked(many, "pi zfs", prune=False)
    assert len(unpruned) == 40 and sorted(unpruned[:3]) == zfs
    # Keyword recall still matches every word.
    keyword = many.recall("pi zfs", mode="keyword", limit=20, all_agents=True)
    assert len(keyword.hits) == 20 and sorted(h.id for h in keyword.hits[:3]) == zfs


def test_a_query_of_common_words_keeps_its_rarest(many: ProjectionStore) -> None:
    conn = many.connection
    assert pruned_match_query(conn, "memories_fts", "pi kitchen") == '"kitchen"'
    assert pruned_match_query(conn, "memories_fts", "pi") == '"pi"'
    # A word the index lacks matches nothing, so the common word stays to match.
    assert pruned_match_query(conn, "memories_fts", "pi quokka") == '"pi" OR "quokka"'
    hits = ranked(many, "pi kitchen", prune=True)
    assert len(hits) == 40 and all(int(key[1:]) < 1200 for key in hits)  # all hold "kitchen"
    result = many.recall(
        "pi kitchen", query_vector=basis(0), model=MODEL, limit=10, all_agents=True
    )
    assert result.mode_used == "hybrid" and len(result.hits) == 10


def test_hybrid_recall_fuses_the_pruned_keyword_half(many: ProjectionStore) -> None:
    def hybrid(text: str) -> list[tuple[str, float]]:
        result = many.recall(text, query_vector=basis(3), model=MODEL, all_agents=True)
        assert result.mode_used == "hybrid"
        return [(hit.id, hit.score) for hit in result.hits]

    assert hybrid("pi zfs") == hybrid("zfs")  # "pi" is in every memory: left out
    assert hybrid("zfs scrub")[0][0] == many_id(0)  # both words, and near enough


def test_rare_words_rank_and_queries_without_common_words_are_unchanged(
    many: ProjectionStore,
) -> None:
    assert ranked(many, "pi zfs scrub", prune=True)[0] == many_id(0)  # holds both
    for text in ("zfs", "zfs scrub", "scrub own17 quokka", "own3 own4"):
        assert pruned_match_query(many.connection, "memories_fts", text) == match_query(text)
        assert ranked(many, text, prune=True) == ranked(many, text, prune=False)


def reference_ranking(store: ProjectionStore, text: str, filters: Filters, depth: int) -> list[str]:
    """The memories' keyword ranking in one joined query: every match looked up, then cut."""
    where, args = filters.sql()
    rows = store.connection.execute(
        "SELECT m.id, -bm25(memories_fts) AS score FROM memories_fts "
        "JOIN memories m ON m.rowid = memories_fts.rowid "
        f"WHERE memories_fts MATCH ? AND {where} ORDER BY score DESC, m.id LIMIT ?",
        (match_query(text), *args, depth),
    ).fetchall()
    return [key for key, _ in rows]


def test_keyword_ranking_equals_the_joined_query(many: ProjectionStore) -> None:
    """BM25 ranks the index alone before the rows are looked up and filtered; the answer is
    the same with loose filters, strict ones (few memories pass), and scores tied at the
    cut (many memories alike)."""
    coder = Filters(agent="coder", all_agents=True)  # 1 memory in 20
    for text in ("pi zfs scrub", "kitchen", "benchmarking filler", "pi", "own7 zfs"):
        for filters in (EVERYONE, coder, Filters(since=1700.0, all_agents=True)):
            for depth in (1, 10, 40):
                expected = reference_ranking(many, text, filters, depth)
                assert ranked(many, text, prune=False, filters=filters, depth=depth) == expected


def test_common_word_counts_follow_the_index(tmp_path: Path) -> None:
    """Document counts are cached, but read again once the index grew: a word that became
    common is left out from then on."""
    s = ProjectionStore(tmp_path / "p.db")
    texts = [f"pi note{i}" + (" quokka" if i < 3 else "") for i in range(1100)]
    s.apply_events([memory_event(i, text) for i, text in enumerate(texts)])
    assert pruned_match_query(s.connection, "memories_fts", "pi quokka") == '"quokka"'
    more = [memory_event(1100 + i, f"quokka again {i}") for i in range(1100)]
    s.apply_events(more)  # "quokka": 1,103 memories of 2,200, above COMMON_MIN_DOCS
    assert pruned_match_query(s.connection, "memories_fts", "pi quokka") == '"pi"'
    s.close()


def memory_event(i: int, text: str) -> Event:
    return event(i + 1, MemoryStored(text=text), many_id(i))
