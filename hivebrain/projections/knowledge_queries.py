"""Read queries over knowledge: keyword search of the chunks of visible documents."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .fts import match_query
from .knowledge import DOCUMENT_VISIBLE


@dataclass(frozen=True, slots=True)
class ChunkHit:
    id: str
    document: str
    source: str
    chunk_index: int
    total_chunks: int
    text: str
    score: float  # -bm25: higher is better


def search(conn: sqlite3.Connection, query: str, limit: int = 10) -> list[ChunkHit]:
    match = match_query(query)
    if match is None or limit < 1:
        return []
    rows = conn.execute(
        "SELECT c.id, c.document, c.source, c.chunk_index, c.total_chunks, c.text, "
        "-bm25(knowledge_fts) AS score FROM knowledge_fts "
        "JOIN knowledge_chunks c ON c.rowid = knowledge_fts.rowid "
        "WHERE knowledge_fts MATCH ? AND NOT EXISTS (SELECT 1 FROM knowledge_documents d "
        f"WHERE d.id = c.document AND NOT ({DOCUMENT_VISIBLE})) "
        "ORDER BY score DESC, c.id LIMIT ?",
        (match, limit),
    ).fetchall()
    return [ChunkHit(*r) for r in rows]
