"""Apply rules of the knowledge family.

* knowledge.document_ingested: the document row, last-writer-wins by stamp.
* knowledge.chunk_added: one row per chunk id (last-writer-wins on a re-sent chunk id).
* knowledge.removed: the document row keeps the highest removal stamp; every chunk of the
  document stamped below it is deleted, and a chunk stamped below it that arrives later is
  never inserted. A document is visible while its ingest stamp is above its removal stamp, so
  a re-ingest after a removal (and its chunks) survives, in any arrival order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import cast

from hivebrain.events import Event
from hivebrain.events.knowledge import ChunkAdded, DocumentIngested, KnowledgeRemoved

from .projection import Projection, lww_upsert, stamp_columns

_DOC_FIELDS = ("source", "title", "kind", "content_hash", "size", "total_chunks", "ts")
_DOC_SQL = lww_upsert("knowledge_documents", ["id"], _DOC_FIELDS, stamp_columns("ingest"))
_REMOVED_SQL = lww_upsert("knowledge_documents", ["id"], [], stamp_columns("removed"))
_DELETE_CHUNKS_SQL = (
    "DELETE FROM knowledge_chunks WHERE document = ? AND (lamport, node, event_id) < (?, ?, ?)"
)
_CHUNK_FIELDS = (
    "document",
    "source",
    "chunk_index",
    "total_chunks",
    "text",
    "content_hash",
    "ts",
)
_CHUNK_COLUMNS = ("id", *_CHUNK_FIELDS, "lamport", "node", "event_id")
_CHUNK_SQL = (
    f"INSERT INTO knowledge_chunks ({', '.join(_CHUNK_COLUMNS)}) "
    f"SELECT {', '.join(':' + c for c in _CHUNK_COLUMNS)} "
    "WHERE NOT EXISTS (SELECT 1 FROM knowledge_documents d WHERE d.id = :document "
    "AND (d.removed_lamport, d.removed_node, d.removed_event) > (:lamport, :node, :event_id)) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_CHUNK_FIELDS, "lamport", "node", "event_id"))
    + " WHERE (excluded.lamport, excluded.node, excluded.event_id) > (lamport, node, event_id)"
)
# A document's visibility: its winning ingest is above its removal.
DOCUMENT_VISIBLE = (
    "(ingest_lamport, ingest_node, ingest_event) > (removed_lamport, removed_node, removed_event)"
)


def apply_ingested(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(DocumentIngested, e.payload)
        rows.append(
            (
                e.entity,
                p.source,
                p.title,
                p.kind,
                p.content_hash,
                p.size,
                p.total_chunks,
                e.ts,
                e.lamport,
                e.node,
                e.event_id,
            )
        )
    conn.executemany(_DOC_SQL, rows)


def apply_chunk(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    rows = []
    for e in events:
        p = cast(ChunkAdded, e.payload)
        rows.append(
            {
                "id": e.entity,
                "document": p.document,
                "source": p.source,
                "chunk_index": p.chunk_index,
                "total_chunks": p.total_chunks,
                "text": p.text,
                "content_hash": p.content_hash,
                "ts": e.ts,
                "lamport": e.lamport,
                "node": e.node,
                "event_id": e.event_id,
            }
        )
    conn.executemany(_CHUNK_SQL, rows)


def apply_removed(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    for e in events:
        stamp = (e.lamport, e.node, e.event_id)
        conn.execute(_REMOVED_SQL, (e.entity, *stamp))
        conn.execute(_DELETE_CHUNKS_SQL, (e.entity, *stamp))


KNOWLEDGE = Projection(
    name="knowledge",
    handlers={
        DocumentIngested: apply_ingested,
        ChunkAdded: apply_chunk,
        KnowledgeRemoved: apply_removed,
    },
)
