"""What the embedder asks the projection: which texts already have a vector for a model.

A vector is stored per (entity, model) with the content hash (sha256 hex of the UTF-8 text) of
the text it was computed from, so "already embedded" is a hash comparison and a text seen under
another entity (the same chunk in two documents, a memory stored twice) is found by its hash.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from .knowledge import DOCUMENT_VISIBLE


def stored_hashes(conn: sqlite3.Connection, model: str, entities: Sequence[str]) -> dict[str, str]:
    """entity -> content hash of its stored vector for `model`, for those that have one."""
    if not entities:
        return {}
    rows = conn.execute(
        "SELECT entity, content_hash FROM embeddings WHERE model = ? "
        "AND entity IN (SELECT value FROM json_each(?))",
        (model, json.dumps(list(entities))),
    ).fetchall()
    return {entity: digest for entity, digest in rows}


def vectors_by_hash(
    conn: sqlite3.Connection, model: str, hashes: Sequence[str]
) -> dict[str, bytes]:
    """content hash -> a stored vector of that text for `model` (any entity's)."""
    if not hashes:
        return {}
    rows = conn.execute(
        "SELECT content_hash, vector FROM embeddings WHERE model = ? "
        "AND content_hash IN (SELECT value FROM json_each(?))",
        (model, json.dumps(list(hashes))),
    ).fetchall()
    return {digest: bytes(vector) for digest, vector in rows}


#: Live texts of every searchable kind, (entity, text).
_TEXTS = (
    "SELECT m.id, m.text FROM memories m WHERE m.deleted = 0 AND m.text IS NOT NULL",
    "SELECT c.id, c.text FROM knowledge_chunks c WHERE NOT EXISTS (SELECT 1 FROM "
    f"knowledge_documents d WHERE d.id = c.document AND NOT ({DOCUMENT_VISIBLE}))",
    "SELECT o.id, o.text FROM observations o",
)


def without_vector(conn: sqlite3.Connection, model: str, limit: int) -> list[tuple[str, str]]:
    """Up to `limit` live texts, (entity, text), that have no vector for `model` at all."""
    union = " UNION ALL ".join(f"SELECT * FROM ({sql})" for sql in _TEXTS)
    return [
        (str(entity), str(text))
        for entity, text in conn.execute(
            f"SELECT t.* FROM ({union}) t WHERE NOT EXISTS (SELECT 1 FROM embeddings e "
            "WHERE e.entity = t.id AND e.model = ?) LIMIT ?",
            (model, limit),
        )
    ]
