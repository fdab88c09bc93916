"""Ingesting files into the brain's knowledge: documents and their chunks, as events.

Why and how: docs/design.md section 10, `hivebrain/app/ingest.py`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hivebrain.app.brain import Brain
from hivebrain.app.chunking import (
    DEFAULT_OVERLAP,
    DEFAULT_SIZE,
    check_sizes,
    chunk_id,
    chunk_text,
)
from hivebrain.app.documents import (
    DEFAULT_MAX_BYTES,
    Candidate,
    Document,
    Found,
    find_files,
    read_document,
)
from hivebrain.errors import ConfigError, ProjectionError
from hivebrain.events import ClockStore, Payload
from hivebrain.events.knowledge import ChunkAdded, DocumentIngested, KnowledgeRemoved
from hivebrain.projections.knowledge import DOCUMENT_VISIBLE
from hivebrain.projections.sqlite import connect, sqlite_errors
from hivebrain.projections.store import SqliteClockStore
from hivebrain.transport.event_writer import EventWriter
from hivebrain.transport.publisher import Ack


@dataclass(frozen=True, slots=True)
class IngestOptions:
    max_bytes: int = DEFAULT_MAX_BYTES
    chunk_size: int = DEFAULT_SIZE
    overlap: int = DEFAULT_OVERLAP
    prune: bool = False  # remove documents under the walked directories that were not found

    def __post_init__(self) -> None:
        try:
            check_sizes(self.chunk_size, self.overlap)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.max_bytes < 1:
            raise ConfigError("the size limit must be at least 1 byte")


@dataclass(frozen=True, slots=True)
class Known:
    """A document as the local projection holds it."""

    content_hash: str
    visible: bool
    complete: bool  # every chunk it announced is present


def known_document(conn: sqlite3.Connection, document: str) -> Known | None:
    row = conn.execute(
        f"SELECT d.content_hash, {DOCUMENT_VISIBLE}, d.total_chunks = "
        "(SELECT count(*) FROM knowledge_chunks c WHERE c.document = d.id) "
        "FROM knowledge_documents d WHERE d.id = ? AND d.ingest_event IS NOT NULL",
        (document,),
    ).fetchone()
    return None if row is None else Known(str(row[0]), bool(row[1]), bool(row[2]))


def visible_documents_under(conn: sqlite3.Connection, root: Path) -> list[tuple[str, str]]:
    """(id, source) of the visible documents whose source is inside directory `root`."""
    prefix = str(root).rstrip(os.sep) + os.sep
    rows = conn.execute(
        f"SELECT id, source FROM knowledge_documents WHERE {DOCUMENT_VISIBLE} "
        "AND substr(source, 1, length(?)) = ? ORDER BY source",
        (prefix, prefix),
    ).fetchall()
    return [(str(i), str(s)) for i, s in rows]


def document_events(doc: Document, chunk_size: int, overlap: int) -> list[tuple[Payload, str]]:
    """(payload, entity) of a document's ingest and its chunks, in publishing order."""
    chunks = chunk_text(doc.text, doc.kind, chunk_size, overlap)
    source = str(doc.path)
    out: list[tuple[Payload, str]] = [
        (
            DocumentIngested(
                source=source,
                title=doc.title,
                kind=doc.kind,
                content_hash=doc.content_hash,
                size=doc.size,
                total_chunks=len(chunks),
            ),
            doc.id,
        )
    ]
    for c in chunks:
        payload = ChunkAdded(
            document=doc.id,
            source=source,
            chunk_index=c.index,
            total_chunks=len(chunks),
            text=c.text,
            content_hash=c.content_hash,
        )
        out.append((payload, chunk_id(doc.id, c.index)))
    return out


@dataclass
class IngestSummary:
    seen: int = 0  # files looked at (read or passed over)
    ingested: int = 0  # new or changed documents published
    unchanged: int = 0  # the projection already holds the same content
    skipped: Counter[str] = field(default_factory=Counter)  # by reason
    removed: int = 0  # documents pruned (--prune)
    chunks: int = 0  # chunks published
    events: int = 0  # events published in all
    seconds: float = 0.0
    applied: bool = True  # the local projection has applied every event published

    def as_dict(self) -> dict[str, object]:
        return {
            "seen": self.seen,
            "ingested": self.ingested,
            "unchanged": self.unchanged,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "removed": self.removed,
            "chunks": self.chunks,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "applied": self.applied,
        }


class _Stamps:
    """Lamport stamps for one run, reserved from the node's clock store in blocks that double
    from 64 up to 65,536 values: a clock write (which waits for the node's projection writer)
    every few thousand events on a large tree, few values skipped after a small run."""

    def __init__(self, store: ClockStore, first_block: int = 64, max_block: int = 65536) -> None:
        self._store = store
        self._block = first_block
        self._max_block = max_block
        self._next = 1
        self._ceiling = 0

    def tick(self) -> int:
        if self._next > self._ceiling:
            first = self._store.reserve(self._next - 1, self._block)
            self._next, self._ceiling = first, first + self._block - 1
            self._block = min(self._block * 2, self._max_block)
        value = self._next
        self._next += 1
        return value


class Ingester:
    """Publishes the knowledge events of a set of files through `brain`.

    Acks are not awaited one by one: the publisher keeps a bounded number in flight, and `run`
    waits for all of them at the end, then for the local projection to apply the last one.
    """

    def __init__(self, brain: Brain, options: IngestOptions) -> None:
        self.brain = brain
        self.options = options
        self._clock_store = SqliteClockStore(brain.settings.db_path)
        self._writer = EventWriter(brain.settings.node, _Stamps(self._clock_store), brain.publisher)
        self._acks: list[asyncio.Future[Ack]] = []

    def close(self) -> None:
        self._clock_store.close()

    async def _publish(self, payload: Payload, entity: str) -> None:
        _, ack = await self._writer.send(payload, entity=entity)
        self._acks.append(ack)

    async def run(
        self, found: Found, on_file: Callable[[Path], None] | None = None
    ) -> IngestSummary:
        started = time.monotonic()
        summary = IngestSummary(seen=len(found.files) + sum(found.skipped.values()))
        summary.skipped.update(found.skipped)
        conn = _open(self.brain)
        try:
            present: set[str] = set()
            for candidate in found.files:
                await self._file(conn, candidate, summary, present)
                if on_file is not None:
                    on_file(candidate.path)
            if self.options.prune:
                await self._prune(conn, found.roots, present, summary)
        finally:
            conn.close()
        acks = await asyncio.gather(*self._acks)
        summary.events = len(acks)
        if acks:
            last = max(acks, key=lambda a: a.seq)
            summary.applied = await self.brain.wait_applied(last, timeout=5.0 + len(acks) / 500)
        summary.seconds = time.monotonic() - started
        return summary

    async def _prune(
        self,
        conn: sqlite3.Connection,
        roots: Sequence[Path],
        present: set[str],
        summary: IngestSummary,
    ) -> None:
        """Remove the visible documents under `roots` that this walk did not read: deleted
        files, and files now passed over (excluded, too large, binary, unreadable)."""
        for root in roots:
            try:
                documents = visible_documents_under(conn, root)
            except sqlite_errors() as exc:
                raise ProjectionError(f"cannot read the knowledge projection: {exc}") from None
            for doc_id, source in documents:
                if doc_id not in present:
                    await self._publish(KnowledgeRemoved(source=source, reason="pruned"), doc_id)
                    summary.removed += 1

    async def _file(
        self,
        conn: sqlite3.Connection,
        candidate: Candidate,
        summary: IngestSummary,
        present: set[str],
    ) -> None:
        doc = read_document(candidate, self.options.max_bytes)
        if isinstance(doc, str):
            summary.skipped[doc] += 1
            return
        present.add(doc.id)
        known = _known(conn, doc.id)
        if known is not None and known.visible:
            if known.content_hash == doc.content_hash and known.complete:
                summary.unchanged += 1
                return
            # Stamped below the new ingest: the old version's chunks go, the new ones stay.
            await self._publish(KnowledgeRemoved(source=str(doc.path), reason="changed"), doc.id)
        events = document_events(doc, self.options.chunk_size, self.options.overlap)
        for payload, entity in events:
            await self._publish(payload, entity)
        summary.ingested += 1
        summary.chunks += len(events) - 1


def _open(brain: Brain) -> sqlite3.Connection:
    return connect(brain.settings.db_path)


def _known(conn: sqlite3.Connection, document: str) -> Known | None:
    try:
        return known_document(conn, document)
    except sqlite_errors() as exc:
        raise ProjectionError(f"cannot read the knowledge projection: {exc}") from None


async def ingest(
    brain: Brain,
    paths: Sequence[Path | str],
    options: IngestOptions | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> IngestSummary:
    """Ingest `paths` (files and directories) through `brain`; see the module docstring."""
    ingester = Ingester(brain, options or IngestOptions())
    try:
        return await ingester.run(find_files(paths), on_file)
    finally:
        ingester.close()
