"""Ingesting files: what a walk reads, and end to end against a running node -- documents and
chunks in the projection, nothing published for unchanged files, a changed file's old chunks
gone, --prune, and the console script."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from nodeproc import Cli, NodeProcess

from hivebrain.app.brain import Brain
from hivebrain.app.documents import Candidate, document_id, find_files, read_document
from hivebrain.app.ingest import IngestOptions, IngestSummary, _Stamps, ingest
from hivebrain.errors import ConfigError
from hivebrain.events.subjects import EVENTS_STREAM
from hivebrain.node.node import Node
from hivebrain.projections.sqlite import connect
from hivebrain.projections.store import SqliteClockStore
from hivebrain.transport.server import free_port

SMALL = IngestOptions(chunk_size=200, overlap=40)


def make_tree(root: Path) -> Path:
    """A small tree: markdown, Python, text, a binary, a hidden directory and skipped ones."""
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "guide.md").write_text(
        "# Octopus Guide\n\n"
        + "\n\n".join(
            f"## Part {i}\n\nThe octopus number {i} guards a brass lantern in the reef. " * 2
            for i in range(6)
        )
    )
    (root / "src").mkdir()
    (root / "src" / "tool.py").write_text(
        "\n\n".join(f"def quokka_{i}(x):\n    return x + {i}\n" for i in range(20))
    )
    (root / "notes.txt").write_text("Narwhals sing in the arctic night. " * 3)
    (root / "picture.txt").write_bytes(b"GIF89a\0\0\1\2binary")
    (root / "archive.bin").write_bytes(b"\0" * 10)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.md").write_text("# hidden walrus\n")
    (root / "node_modules" / "pkg").mkdir(parents=True)
    (root / "node_modules" / "pkg" / "index.js").write_text("walrus()")
    (root / ".env.md").write_text("walrus")
    return root


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    # The node's own SQLite library: two libraries on one file in one process break its locks.
    conn = connect(db)
    try:
        return list(conn.execute(sql, args).fetchall())
    finally:
        conn.close()


def chunks_of(db: Path, path: Path) -> list[tuple[Any, ...]]:
    """(id, text, event_id) of the chunks of the document at `path`, in order."""
    return rows(
        db,
        "SELECT id, text, event_id FROM knowledge_chunks WHERE document = ? ORDER BY chunk_index",
        document_id(path),
    )


# -- walking and reading (no server) ----------------------------------------------------------


def test_the_walk_reads_text_files_and_passes_over_the_rest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    (root / "big.md").write_text("x" * 2000)
    found = find_files([root, root / "notes.txt"])  # a file named twice is read once
    names = sorted(c.path.relative_to(root).as_posix() for c in found.files)
    assert names == ["big.md", "docs/guide.md", "notes.txt", "picture.txt", "src/tool.py"]
    assert found.roots == [root.resolve()]
    assert found.skipped == {"extension": 1, "hidden": 1}  # archive.bin, .env.md
    kinds = {c.path.name: c.kind for c in found.files}
    assert kinds["guide.md"] == "markdown" and kinds["tool.py"] == "code"
    assert kinds["notes.txt"] == "text"

    assert read_document(Candidate(root / "picture.txt", "text"), 1000) == "binary"
    assert read_document(Candidate(root / "big.md", "markdown"), 1000) == "too large"
    doc = read_document(Candidate(root / "docs" / "guide.md", "markdown"), 10_000)
    assert not isinstance(doc, str)
    assert doc.title == "Octopus Guide" and doc.id == document_id(root / "docs" / "guide.md")
    assert len(doc.id) == 32 and doc.size == len((root / "docs" / "guide.md").read_bytes())
    assert read_document(Candidate(root / "notes.txt", "text"), 10_000) != "binary"

    # a file named explicitly is read whatever its extension
    assert [c.path.name for c in find_files([root / "archive.bin"]).files] == ["archive.bin"]


def test_a_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or directory"):
        find_files([tmp_path, tmp_path / "nope"])


def test_document_ids_are_stable_per_resolved_path(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("a")
    assert document_id(tmp_path / "a.md") == document_id(tmp_path / "." / "a.md")
    assert document_id(tmp_path / "a.md") != document_id(tmp_path / "b.md")


# -- end to end against an in-process node ----------------------------------------------------


@pytest.fixture
async def brain(node: Node) -> AsyncIterator[Brain]:
    assert node.bus is not None
    b = Brain(node.settings, node.bus, await node.bus.publisher())
    yield b
    await b.publisher.close()
    b.store.close()


async def last_seq(brain: Brain) -> int:
    return await brain.bus.last_seq(EVENTS_STREAM)


async def test_ingest_reingest_change_and_prune(brain: Brain, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    db = brain.settings.db_path
    guide, tool, notes = root / "docs" / "guide.md", root / "src" / "tool.py", root / "notes.txt"

    before = await last_seq(brain)
    first = await ingest(brain, [root], SMALL)
    assert (first.ingested, first.unchanged, first.removed) == (3, 0, 0)
    assert first.skipped == {"binary": 1, "extension": 1, "hidden": 1}
    assert first.seen == 6 and first.applied
    assert first.events == 3 + first.chunks and await last_seq(brain) == before + first.events

    documents = rows(db, "SELECT source, title, kind, total_chunks FROM knowledge_documents")
    by_source = {str(s): (t, k, n) for s, t, k, n in documents}
    assert set(by_source) == {str(guide.resolve()), str(tool.resolve()), str(notes.resolve())}
    assert by_source[str(guide.resolve())][:2] == ("Octopus Guide", "markdown")
    assert by_source[str(tool.resolve())][:2] == ("tool.py", "code")
    for path in (guide, tool, notes):
        n = by_source[str(path.resolve())][2]
        assert [c[0] for c in chunks_of(db, path)] == [f"{document_id(path)}:{i}" for i in range(n)]
    assert sum(len(chunks_of(db, p)) for p in (guide, tool, notes)) == first.chunks
    assert len(chunks_of(db, guide)) > 3 and len(chunks_of(db, tool)) > 3

    [hit] = brain.store.search_knowledge("narwhals arctic")
    assert hit.source == str(notes.resolve()) and (hit.chunk_index, hit.total_chunks) == (0, 1)
    hits = brain.store.search_knowledge("brass lantern", limit=50)
    assert hits and {h.source for h in hits} == {str(guide.resolve())}
    assert brain.store.search_knowledge("walrus") == []  # hidden and skipped files stay out

    # unchanged: nothing is published
    seq = await last_seq(brain)
    again = await ingest(brain, [root], SMALL)
    assert (again.ingested, again.unchanged, again.events, again.chunks) == (0, 3, 0, 0)
    assert await last_seq(brain) == seq

    # one file changed (and shorter): its old chunks go, the new ones stay, the rest untouched
    untouched = {p: chunks_of(db, p) for p in (tool, notes)}
    guide.write_text("# Octopus Guide\n\nThe octopus retired and now paints seashells.\n")
    changed = await ingest(brain, [root], SMALL)
    assert (changed.ingested, changed.unchanged, changed.chunks) == (1, 2, 1)
    assert changed.events == 3  # removed, document_ingested, one chunk_added
    assert await last_seq(brain) == seq + 3
    [(chunk, text, _)] = chunks_of(db, guide)
    assert chunk == f"{document_id(guide)}:0" and "paints seashells" in str(text)
    assert brain.store.search_knowledge("brass lantern") == []
    assert [h.source for h in brain.store.search_knowledge("seashells")] == [str(guide.resolve())]
    assert {p: chunks_of(db, p) for p in (tool, notes)} == untouched

    # a vanished file: kept without --prune, removed with it
    notes.unlink()
    kept = await ingest(brain, [root], SMALL)
    assert (kept.removed, kept.events) == (0, 0)
    assert brain.store.search_knowledge("narwhals")
    pruned = await ingest(brain, [root], IngestOptions(chunk_size=200, overlap=40, prune=True))
    assert (pruned.removed, pruned.events, pruned.unchanged) == (1, 1, 2)
    assert brain.store.search_knowledge("narwhals") == [] and chunks_of(db, notes) == []
    assert {p: chunks_of(db, p) for p in (tool,)} == {tool: untouched[tool]}

    # the file comes back: a re-ingest after a removal is visible again
    notes.write_text("Narwhals are back in the arctic.")
    back = await ingest(brain, [root], SMALL)
    assert back.ingested == 1 and back.events == 2
    assert [h.source for h in brain.store.search_knowledge("narwhals")] == [str(notes.resolve())]


async def test_incomplete_document_is_ingested_again(brain: Brain, tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("# A\n\n" + "Lorem ipsum dolor sit amet. " * 40)
    first = await ingest(brain, [path], SMALL)
    assert first.chunks > 2
    # a chunk lost from the projection (e.g. an ingest interrupted before its last chunk)
    conn = connect(brain.settings.db_path)
    conn.execute("DELETE FROM knowledge_chunks WHERE id = ?", (f"{document_id(path)}:1",))
    conn.close()
    again = await ingest(brain, [path], SMALL)
    assert again.ingested == 1 and again.chunks == first.chunks
    assert len(chunks_of(brain.settings.db_path, path)) == first.chunks


# -- the console script against `hivebrain up` ------------------------------------------------


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("ingest") / "home", free_port())


@pytest.fixture(scope="module")
def up(cli: Cli) -> Iterator[NodeProcess]:
    process = NodeProcess(cli)
    process.start()
    yield process
    process.close()


def test_console_ingest_and_search(cli: Cli, up: NodeProcess, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    summary = json.loads(cli.ok("--json", "ingest", str(root)))
    assert summary["ingested"] == 3 and summary["skipped"] == 3 and summary["applied"] is True
    assert set(summary) == set(IngestSummary().as_dict())
    line = cli.ok("ingest", str(root), "--chunk-size", "300")
    assert line.startswith("6 files seen: 0 ingested, 3 unchanged, 3 skipped; 0 chunks")

    out = cli.ok("knowledge", "search", "narwhals", "--limit", "5")
    assert str((root / "notes.txt").resolve()) in out and "(chunk 1/1)" in out
    assert "Narwhals sing in the arctic night." in out
    [hit] = json.loads(cli.ok("--json", "knowledge", "search", "narwhals"))
    assert hit["source"] == str((root / "notes.txt").resolve())
    assert cli.ok("knowledge", "search", "zebra").strip() == "no knowledge matches"


def test_console_ingest_of_a_missing_path_is_one_line(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("ingest", str(tmp_path), str(tmp_path / "nope"))
    assert result.code == 2 and result.out == ""
    assert [line for line in result.err.splitlines() if line.strip()] == [
        f"error: no such file or directory: {tmp_path / 'nope'}"
    ]


def test_stamps_increase_above_the_store_in_doubling_blocks(tmp_path: Path) -> None:
    store = SqliteClockStore(tmp_path / "clock.db")
    try:
        store.observe(1000)  # e.g. a remote event applied by the node
        stamps = _Stamps(store, first_block=4, max_block=16)
        values = [stamps.tick() for _ in range(60)]
        assert values[0] == 1001 and values == sorted(set(values))
        # blocks of 4, 8, 16, 16, 16: five reservations, the last one partly used
        assert store.reserve(0, 1) == 1001 + 4 + 8 + 16 * 3
    finally:
        store.close()
