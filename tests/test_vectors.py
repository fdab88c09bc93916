"""Vector search (exact with sqlite-vec, hnswlib above a threshold) and hybrid recall, on real
SQLite files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from hivebrain.events import Event
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.knowledge import ChunkAdded
from hivebrain.events.memory import MemoryForgotten, MemoryStored
from hivebrain.events.observation import ObservationWritten
from hivebrain.projections import ProjectionStore
from hivebrain.projections.flat_index import FlatIndex
from hivebrain.projections.hnsw_index import AnnIndex, index_paths
from hivebrain.projections.recall import RRF_K, fuse
from hivebrain.projections.schema import SCHEMA_VERSION, schema_version

MODEL = "test-model"
BIG = 30_000
BIG_DIM = 64


def vec(values: Sequence[float] | np.ndarray) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def basis(i: int, dim: int = 8) -> bytes:
    out = np.full(dim, 0.01, dtype="<f4")
    out[i] = 1.0
    return out.tobytes()


def stored(n: int, text: str, *, node: str = "n1", **fields: object) -> Event:
    return Event.new(
        MemoryStored(text=text, **fields),
        node=node,
        lamport=n,
        entity=f"m{n}",
        ts=1000.0 + n,
    )


def embedded(entity: str, vector: bytes, lamport: int, model: str = MODEL) -> Event:
    return Event.new(
        EmbeddingComputed(model=model, dim=len(vector) // 4, vector=vector, content_hash="h"),
        node="n1",
        lamport=lamport,
        entity=entity,
    )


def ann(store: ProjectionStore, model: str = MODEL) -> AnnIndex:
    index = store.vectors.index(model)
    assert isinstance(index, AnnIndex)
    return index


# -- a mid-size set: 30,000 memories with 64-d vectors, over the default threshold ----------


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random vectors around 300 random centres (embeddings of texts cluster like this)."""
    centres = np.random.default_rng(1).standard_normal((300, BIG_DIM))
    points = centres[rng.integers(0, 300, n)] + 0.5 * rng.standard_normal((n, BIG_DIM))
    return points.astype("<f4")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    db = tmp_path_factory.mktemp("big") / "p.db"
    vectors = clustered(np.random.default_rng(7), BIG)
    with ProjectionStore(db) as store:
        for start in range(0, BIG, 5000):
            events = []
            for i in range(start + 1, start + 5001):
                events.append(stored(i, f"memory number {i}"))
                events.append(embedded(f"m{i}", vectors[i - 1].tobytes(), i))
            store.apply_events(events)
    return db, vectors


def copy_db(db: Path, into: Path) -> Path:
    for path in db.parent.glob(db.name + "*"):
        shutil.copy(path, into / path.name)
    return into / db.name


def test_ann_top10_agrees_with_exact(big: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    db = copy_db(big[0], tmp_path)
    queries = clustered(np.random.default_rng(8), 50)
    with ProjectionStore(db) as store:
        assert ann(store).builds == 1 and ann(store).count == BIG
        found = 0
        for q in queries:
            near = {
                h.entity
                for h in store.search_vectors(q.tobytes(), MODEL, limit=10, all_agents=True)
            }
            exact = store.search_vectors(q.tobytes(), MODEL, limit=10, exact=True, all_agents=True)
            assert len(exact) == 10
            found += len(near & {h.entity for h in exact})
        assert found / (10 * len(queries)) >= 0.95


MID = 3000


def open_mid(db: Path) -> ProjectionStore:
    return ProjectionStore(db, vector_threshold=MID // 2)


def test_index_persisted_reloaded_rebuilt_and_followed(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    vectors = np.random.default_rng(3).standard_normal((MID, BIG_DIM)).astype("<f4")
    with open_mid(db) as store:
        store.apply_events(
            [stored(i, f"memory number {i}") for i in range(1, MID + 1)]
            + [embedded(f"m{i}", vectors[i - 1].tobytes(), i) for i in range(1, MID + 1)]
        )
    path, meta_path = index_paths(db, MODEL)
    query = vectors[123].tobytes()
    with open_mid(db) as store:
        first = store.search_vectors(query, MODEL, limit=5, all_agents=True)
        assert first[0].entity == "m124" and first[0].kind == "memory"
        assert ann(store).builds == 1
    meta = json.loads(meta_path.read_text())
    assert meta["count"] == MID and meta["model"] == MODEL
    mtime = path.stat().st_mtime_ns

    with open_mid(db) as store:  # loaded, not rebuilt
        assert store.search_vectors(query, MODEL, limit=5, all_agents=True) == first
        assert ann(store).builds == 0
    assert path.stat().st_mtime_ns == mtime

    path.unlink()
    with open_mid(db) as store:  # missing: rebuilt
        assert store.search_vectors(query, MODEL, limit=5, all_agents=True) == first
        assert ann(store).builds == 1
    assert path.exists()

    meta_path.write_text(json.dumps({**meta, "count": MID - 1}))
    with open_mid(db) as store:  # inconsistent: rebuilt
        assert ann(store).builds == 1

    target = np.random.default_rng(9).standard_normal(BIG_DIM).astype("<f4")
    with open_mid(db) as store:  # followed incrementally
        index = ann(store)
        store.apply_events([stored(MID + 1, "a new one"), embedded(f"m{MID + 1}", vec(target), 1)])
        [hit] = store.search_vectors(vec(target), MODEL, limit=1, all_agents=True)
        assert hit.entity == f"m{MID + 1}"
        assert index.builds == 0 and index.count == MID + 1
        # A later vector for an existing memory replaces its old one in the index.
        store.apply_events([embedded("m5", vec(-target), MID + 10)])
        [hit] = store.search_vectors(vec(-target), MODEL, limit=1, all_agents=True)
        assert hit.entity == "m5" and hit.distance == pytest.approx(0.0, abs=1e-5)
        assert index.builds == 0 and index.count == MID + 1
    with open_mid(db) as store:  # loaded, then the additions read again from the log
        assert (
            store.search_vectors(vec(target), MODEL, limit=1, all_agents=True)[0].entity
            == f"m{MID + 1}"
        )
        assert ann(store).builds == 0


# -- small stores ----------------------------------------------------------------------------


def test_fuse_is_reciprocal_rank_fusion() -> None:
    fused = fuse([["a", "b", "c"], ["c", "a", "d"]])
    k = RRF_K
    assert fused == [
        ("a", 1 / (k + 1) + 1 / (k + 2)),
        ("c", 1 / (k + 3) + 1 / (k + 1)),
        ("b", 1 / (k + 2)),
        ("d", 1 / (k + 3)),
    ]
    assert fuse([["y"], ["x"]]) == [("x", 1 / (k + 1)), ("y", 1 / (k + 1))]  # ties: by id
    assert fuse([]) == []


def small_events() -> list[Event]:
    return [
        stored(1, "the octopus opened a jar of pickles", agent="a", tags=("sea",)),
        stored(2, "a cephalopod escaped its aquarium at night", agent="b", space="working"),
        stored(3, "an octopus has three hearts", agent="a", node="n2"),
        stored(4, "the garden needs water on tuesdays", agent="a"),
        embedded("m1", basis(0), 10),
        embedded("m2", basis(1), 11),
        # m3 has no vector
        embedded("m4", basis(2), 12),
    ]


@pytest.fixture(params=[10**6, 2], ids=["exact", "hnsw"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ProjectionStore:
    s = ProjectionStore(tmp_path / "p.db", vector_threshold=request.param)
    s.apply_events(small_events())
    request.addfinalizer(s.close)
    return s


def ids(store: ProjectionStore, text: str, vector: bytes | None, **kw: object) -> list[str]:
    result = store.recall(text, query_vector=vector, model=MODEL, all_agents=True, **kw)  # type: ignore[arg-type]
    return [hit.id for hit in result.hits]


def test_hybrid_finds_by_vector_and_by_keyword(store: ProjectionStore) -> None:
    result = store.recall("octopus", query_vector=basis(1), model=MODEL, all_agents=True)
    assert result.mode_used == "hybrid" and result.note is None
    found = [hit.id for hit in result.hits]
    # m2 shares no word with the query (found by vector), m3 has no vector (found by keyword).
    assert set(found) >= {"m1", "m2", "m3"}
    assert found[0] == "m1"  # in both rankings
    assert result.hits[0].score > result.hits[1].score
    assert ids(store, "octopus", basis(1), mode="vector")[0] == "m2"
    keyword = store.recall(
        "octopus", query_vector=basis(1), model=MODEL, mode="keyword", all_agents=True
    )
    assert keyword.mode_used == "keyword" and {h.id for h in keyword.hits} == {"m1", "m3"}


def test_falls_back_to_keywords_and_says_so(store: ProjectionStore) -> None:
    no_vector = store.recall("octopus", all_agents=True)
    assert no_vector.mode_used == "keyword" and no_vector.note is not None
    assert "no query vector" in no_vector.note
    assert {h.id for h in no_vector.hits} == {"m1", "m3"}
    other = store.recall(
        "octopus", query_vector=basis(1), model="other", mode="vector", all_agents=True
    )
    assert other.mode_used == "keyword" and other.note is not None
    assert "no vectors for model other" in other.note


def test_filters_are_honoured(store: ProjectionStore) -> None:
    by_agent = ids(store, "octopus", basis(1), agent="a")
    assert by_agent[0] == "m1" and set(by_agent) == {"m1", "m3", "m4"}
    assert ids(store, "octopus", basis(1), space="working") == ["m2"]
    assert ids(store, "octopus", basis(1), tags=["sea"]) == ["m1"]
    assert ids(store, "octopus", basis(1), node="n2") == ["m3"]
    assert set(ids(store, "octopus", basis(1), since=1002.0, until=1004.0)) == {"m2", "m3"}
    hits = store.search_vectors(basis(1), MODEL, agent="b", all_agents=True)
    assert [h.entity for h in hits] == ["m2"]
    store.apply_events([Event.new(MemoryForgotten(), node="n1", lamport=20, entity="m2")])
    assert "m2" not in ids(store, "octopus", basis(1))
    assert "m2" not in ids(store, "octopus", basis(1), mode="vector")
    assert "m2" not in [h.entity for h in store.search_vectors(basis(1), MODEL, all_agents=True)]


def test_knowledge_and_observations_have_their_kind(store: ProjectionStore) -> None:
    chunk = ChunkAdded(
        document="d1", source="s", chunk_index=0, total_chunks=1, text="x", content_hash="h"
    )
    store.apply_events(
        [
            Event.new(chunk, node="n1", lamport=30, entity="c1"),
            Event.new(ObservationWritten(text="warm"), node="n1", lamport=31, entity="o1"),
            embedded("c1", basis(5), 32),
            embedded("o1", basis(6), 33),
            embedded("nobody", basis(7), 34),  # no entity: never returned
        ]
    )
    assert [
        (h.entity, h.kind) for h in store.search_vectors(basis(5), MODEL, limit=1, all_agents=True)
    ] == [("c1", "knowledge")]
    assert store.search_vectors(basis(6), MODEL, limit=1, all_agents=True)[0].kind == "observation"
    assert "nobody" not in {
        h.entity for h in store.search_vectors(basis(7), MODEL, all_agents=True)
    }
    assert (
        store.search_vectors(basis(5), MODEL, kinds=("memory",), all_agents=True)[0].kind
        == "memory"
    )


def test_reset_and_replay_give_the_same_results(tmp_path: Path) -> None:
    queries = [("octopus", basis(1)), ("garden", basis(0)), ("jar", basis(2))]
    events = small_events()
    with ProjectionStore(tmp_path / "p.db", vector_threshold=2) as store:
        store.apply_events(events)
        before = [store.recall(t, query_vector=v, model=MODEL, all_agents=True) for t, v in queries]
        digest = store.digest()
        path, _ = index_paths(store.path, MODEL)
        assert path.exists() and ann(store).builds == 1
        store.reset()
        assert not path.exists()
        assert (
            store.recall("octopus", query_vector=basis(1), model=MODEL, all_agents=True).hits == []
        )
        store.apply_events(events)
        after = [store.recall(t, query_vector=v, model=MODEL, all_agents=True) for t, v in queries]
        assert after == before and store.digest() == digest
        assert ann(store).builds == 1


def test_version_1_database_gets_the_change_log(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with ProjectionStore(db, vector_threshold=2) as store:
        store.apply_events(small_events())
        conn = store.connection
        conn.execute("DROP TABLE embedding_changes")
        conn.execute("DROP TRIGGER embedding_changes_ai")
        conn.execute("DROP TRIGGER embedding_changes_au")
        conn.execute("DROP INDEX embeddings_by_model")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with ProjectionStore(db, vector_threshold=2) as store:
        assert schema_version(store.connection) == SCHEMA_VERSION
        rows = store.connection.execute("SELECT count(*) FROM embedding_changes").fetchone()
        assert rows[0] == 3
        assert store.search_vectors(basis(2), MODEL, limit=1, all_agents=True)[0].entity == "m4"


def test_model_names_become_safe_distinct_file_names(tmp_path: Path) -> None:
    names = ["org/model:latest", "org_model_latest"]
    with ProjectionStore(tmp_path / "p.db", vector_threshold=1) as store:
        store.apply_events(small_events()[:4])
        for n, model in enumerate(names):
            store.apply_events(
                [embedded(f"m{i}", basis(i + n), 40 + i, model) for i in range(1, 4)]
            )
            assert (
                store.search_vectors(basis(1 + n), model, limit=1, all_agents=True)[0].entity
                == "m1"
            )
        paths = [index_paths(store.path, model)[0] for model in names]
        assert len(set(paths)) == 2 and all(p.exists() and p.parent == tmp_path for p in paths)
        store.reset()
        assert not any(p.exists() for p in paths)


def test_below_the_threshold_the_flat_index_answers_like_the_exact_scan(tmp_path: Path) -> None:
    """The in-memory matrix follows the table (new rows, replaced vectors) and, with the exact
    re-rank, gives what the SQL scan gives, forgotten memories left out."""
    rng = np.random.default_rng(3)
    queries = clustered(rng, 20)

    def same_as_exact(store: ProjectionStore) -> None:
        for q in queries:
            fast = store.search_vectors(q.tobytes(), MODEL, limit=10, all_agents=True)
            exact = store.search_vectors(q.tobytes(), MODEL, limit=10, all_agents=True, exact=True)
            assert [h.entity for h in fast] == [h.entity for h in exact]

    vectors = clustered(rng, 600)
    with ProjectionStore(tmp_path / "p.db") as store:
        events = []
        for i in range(1, 501):
            events += [stored(i, f"memory {i}"), embedded(f"m{i}", vectors[i - 1].tobytes(), i)]
        store.apply_events(events)
        assert isinstance(store.vectors.index(MODEL), FlatIndex)
        same_as_exact(store)
        later = []
        for i in range(501, 601):  # new memories
            later += [stored(i, f"memory {i}"), embedded(f"m{i}", vectors[i - 1].tobytes(), i)]
        for i in range(1, 51):  # new vectors for old ones: each the same as a query's
            later.append(embedded(f"m{i}", queries[i % 20].tobytes(), 1000 + i))
        for i in range(51, 71):
            later.append(Event.new(MemoryForgotten(), node="n1", lamport=2000 + i, entity=f"m{i}"))
        store.apply_events(later)
        index = store.vectors.index(MODEL)
        assert isinstance(index, FlatIndex) and index.count == 600
        same_as_exact(store)
        hit = store.search_vectors(queries[7].tobytes(), MODEL, limit=1, all_agents=True)
        assert hit[0].entity in {f"m{i}" for i in range(1, 51) if i % 20 == 7}
