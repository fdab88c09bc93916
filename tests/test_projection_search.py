"""Keyword search over memories and knowledge (FTS5, BM25) and its filters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hivebrain.events import Event, Payload, VersionRef
from hivebrain.events.knowledge import ChunkAdded, DocumentIngested, KnowledgeRemoved
from hivebrain.events.memory import MemoryEdited, MemoryForgotten, MemoryMoved, MemoryStored
from hivebrain.projections import MemoryHit, ProjectionStore


def ev(payload: Payload, lamport: int, entity: str, node: str = "n1", ts: float = 0.0) -> Event:
    return Event.new(payload, node=node, lamport=lamport, entity=entity, ts=ts or 100.0 + lamport)


MEMORIES = [
    ev(
        MemoryStored(text="The heating in the garage runs on gas", tags=("home", "energy")), 1, "m1"
    ),
    ev(MemoryStored(text="Garage door opener battery replaced", tags=("home",)), 2, "m2", "n2"),
    ev(MemoryStored(text="Python wheels for the Raspberry Pi", agent="coder"), 3, "m3"),
    ev(
        MemoryStored(text="Café au lait recipe: half coffee, half milk", space="personal_logs"),
        4,
        "m4",
    ),
    ev(MemoryStored(text="garage garage garage sale on saturday"), 5, "m5", "n3"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProjectionStore]:
    s = ProjectionStore(tmp_path / "p.db")
    s.apply_events(MEMORIES)
    yield s
    s.close()


def ids(hits: list[MemoryHit]) -> list[str]:
    return [h.id for h in hits]


def test_bm25_ranks_the_best_match_first(store: ProjectionStore) -> None:
    hits = store.search_memories("garage sale")
    assert ids(hits)[0] == "m5"
    assert set(ids(hits)) == {"m1", "m2", "m5"}
    assert hits[0].score > hits[-1].score
    assert ids(store.search_memories("raspberry", agent="coder")) == ["m3"]
    assert store.search_memories("raspberry") == []  # another agent's, not shared
    assert store.search_memories("nothing matches this") == []


def test_hits_carry_the_memory(store: ProjectionStore) -> None:
    (hit,) = store.search_memories("heating")
    assert (hit.id, hit.agent, hit.space, hit.node, hit.lamport) == (
        "m1",
        "default",
        "long_term",
        "n1",
        1,
    )
    assert hit.tags == ("energy", "home")
    assert hit.text.startswith("The heating") and not hit.forgotten


def test_stemming_and_diacritics(store: ProjectionStore) -> None:
    assert ids(store.search_memories("cafe")) == ["m4"]
    assert ids(store.search_memories("replacing batteries")) == ["m2"]


def test_filters(store: ProjectionStore) -> None:
    assert ids(store.search_memories("garage", tags=["home", "energy"])) == ["m1"]
    assert set(ids(store.search_memories("garage", tags=["home"]))) == {"m1", "m2"}
    assert ids(store.search_memories("garage", node="n2")) == ["m2"]
    assert ids(store.search_memories("python", agent="coder")) == ["m3"]
    assert store.search_memories("python", agent="other") == []
    assert ids(store.search_memories("coffee", space="personal_logs")) == ["m4"]
    assert set(ids(store.search_memories("garage", since=102.0))) == {"m2", "m5"}
    assert ids(store.search_memories("garage", until=102.0)) == ["m1"]
    assert len(store.search_memories("garage", limit=1)) == 1


def test_listing_is_recent_first_with_filters(store: ProjectionStore) -> None:
    assert ids(store.list_memories(all_agents=True)) == ["m5", "m4", "m3", "m2", "m1"]
    assert ids(store.list_memories()) == ["m5", "m4", "m2", "m1"]
    assert ids(store.list_memories(tags=["home"], limit=1)) == ["m2"]


def test_forgotten_memories_are_not_found_unless_asked(store: ProjectionStore) -> None:
    store.apply_events([ev(MemoryForgotten(), 9, "m5")])
    assert "m5" not in ids(store.search_memories("garage"))
    assert "m5" not in ids(store.list_memories())
    with_forgotten = store.search_memories("garage", include_forgotten=True)
    assert "m5" in ids(with_forgotten)
    assert [h.forgotten for h in with_forgotten if h.id == "m5"] == [True]
    assert "m5" in ids(store.list_memories(include_forgotten=True))


def test_edits_and_moves_are_searchable(store: ProjectionStore) -> None:
    base = VersionRef.of(MEMORIES[2].stamp)
    store.apply_events(
        [
            ev(MemoryEdited(base=base, text="Rust crates for the Raspberry Pi"), 9, "m3"),
            ev(MemoryMoved(space="archive"), 9, "m3"),
        ]
    )
    assert store.search_memories("python") == []
    assert ids(store.search_memories("rust", space="archive", agent="coder")) == ["m3"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text())
def test_no_query_text_is_fts_syntax(store: ProjectionStore, query: str) -> None:
    store.search_memories(query, include_forgotten=True)
    store.search_knowledge(query)


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "garage AND",
        "NEAR(garage",
        "*",
        "garage*",
        "(garage) OR",
        "-garage",
        "col:garage",
        "garage^",
        "ünïcødé 車庫",
        "",
        "   ",
        "NOT",
        "'",
        "\x00",
    ],
)
def test_odd_queries_never_raise_and_match_their_words_literally(
    store: ProjectionStore, query: str
) -> None:
    found = set(ids(store.search_memories(query, limit=50)))
    if "garage" in query:  # FTS operators around it are plain words, not syntax
        assert {"m1", "m5"} <= found
    elif not any(ch.isalnum() for ch in query) or "ünïcødé" in query:
        assert found == set()  # nothing to search for, or words no memory has


def test_knowledge_search_follows_removal(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "k.db")
    doc = DocumentIngested(source="garden.md", content_hash="h", size=1, total_chunks=1)

    def chunk(text: str) -> ChunkAdded:
        return ChunkAdded(
            document="d1",
            source="garden.md",
            chunk_index=0,
            total_chunks=1,
            text=text,
            content_hash="c",
        )

    store.apply_events([ev(doc, 1, "d1"), ev(chunk("tomatoes need sun"), 2, "c1")])
    (hit,) = store.search_knowledge("tomato")
    assert (hit.id, hit.document, hit.source) == ("c1", "d1", "garden.md")
    store.apply_events([ev(KnowledgeRemoved(), 3, "d1")])
    assert store.search_knowledge("tomatoes") == []
    store.apply_events([ev(chunk("tomatoes, late chunk of the old ingest"), 2, "c2")])
    assert store.search_knowledge("tomatoes") == []
    store.apply_events([ev(doc, 4, "d1"), ev(chunk("tomatoes again"), 5, "c3")])
    assert [h.id for h in store.search_knowledge("tomatoes")] == ["c3"]
    store.close()
