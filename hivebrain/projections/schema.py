"""The projection database's tables and its small migrations registry.

Why and how: docs/design.md section 10, `hivebrain/projections/schema.py`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from hivebrain.errors import ProjectionError

from .fts import TOKENIZER

SCHEMA_VERSION = 6


def _stamp(prefix: str) -> str:
    return (
        f"{prefix}_lamport INTEGER NOT NULL DEFAULT 0, "
        f"{prefix}_node TEXT NOT NULL DEFAULT '', "
        f"{prefix}_event TEXT NOT NULL DEFAULT ''"
    )


NODE_TABLES = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS clock (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "high INTEGER NOT NULL)",
]

#: Conditions under which a memory's text is in the live or the forgotten keyword index.
LIVE = "{r}.text IS NOT NULL AND {r}.stored_event != '' AND {r}.deleted = 0"
GONE = "{r}.text IS NOT NULL AND {r}.stored_event != '' AND {r}.deleted = 1"


def _fts_triggers(
    table: str, fts: str, column: str, cond: str, watch: str, deferred: str = ""
) -> list[str]:
    """Triggers that keep external-content index `fts` equal to rows of `table` where `cond`.

    With `deferred` (a condition on `old`), rows outside it are not in the index yet: inserts
    are indexed in bulk after each batch (see `memories.index_new`), so the triggers leave
    them alone.
    """
    old, new = cond.format(r="old"), cond.format(r="new")
    if deferred:
        old, new = f"{deferred} AND {old}", f"{deferred} AND {new}"
    changed = f"old.{column} IS NOT new.{column}"
    insert = [
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} WHEN {new} BEGIN "
        f"INSERT INTO {fts}(rowid, {column}) VALUES (new.rowid, new.{column}); END",
    ]
    return [
        *([] if deferred else insert),
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} WHEN {old} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.rowid, old.{column}); "
        "END",
        # One trigger, so the old entry is always deleted before the new one is inserted.
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {watch} ON {table} "
        f"WHEN ({old}) OR ({new}) BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {column}) SELECT 'delete', old.rowid, old.{column} "
        f"WHERE ({old}) AND (NOT ({new}) OR {changed}); "
        f"INSERT INTO {fts}(rowid, {column}) SELECT new.rowid, new.{column} "
        f"WHERE ({new}) AND (NOT ({old}) OR {changed}); END",
    ]


_TOKENIZE = f"tokenize = '{TOKENIZER}'"


def _fts(name: str, table: str, column: str, rowid: str = "rowid") -> str:
    return (
        f"CREATE VIRTUAL TABLE {name} USING fts5({column}, content = '{table}', "
        f"content_rowid = '{rowid}', {_TOKENIZE})"
    )


#: The log of `embeddings` rows written (insert, or a vector replaced in place by a later
#: stamp): its `seq` is the position the hnswlib index records. Node-local, like FTS.
EMBEDDING_CHANGES_DDL = [
    "CREATE INDEX embeddings_by_model ON embeddings (model)",
    "CREATE TABLE embedding_changes (seq INTEGER PRIMARY KEY, row INTEGER NOT NULL, "
    "model TEXT NOT NULL)",
    "CREATE TRIGGER embedding_changes_ai AFTER INSERT ON embeddings BEGIN "
    "INSERT INTO embedding_changes (row, model) VALUES (new.rowid, new.model); END",
    "CREATE TRIGGER embedding_changes_au AFTER UPDATE OF vector ON embeddings BEGIN "
    "INSERT INTO embedding_changes (row, model) VALUES (new.rowid, new.model); END",
]

#: The embedder's cache: a text already embedded for a model is found by its content hash.
EMBEDDINGS_BY_HASH_DDL = (
    "CREATE INDEX IF NOT EXISTS embeddings_by_hash ON embeddings (model, content_hash)"
)

#: An agent's working-memory policy (v4), and the lookup of agents by name.
AGENT_POLICY_COLUMNS = (
    ("working_max_age", "REAL"),
    ("working_max_count", "INTEGER"),
    ("consolidate_to", "TEXT"),
)
AGENTS_BY_NAME_DDL = "CREATE INDEX IF NOT EXISTS agents_by_name ON agents (name)"

_MEMORY_WATCH = "text, deleted, stored_event"
#: Memories up to `fts_progress.high` are indexed; newer ones are indexed after the batch.
MEMORY_INDEXED = "old.mid <= (SELECT high FROM fts_progress WHERE name = 'memories')"

#: Erasure (`erasures.py`): what is erased, and which nodes confirmed it.
ERASURE_DDL = [
    "CREATE TABLE IF NOT EXISTS erasures (memory TEXT PRIMARY KEY, content_hash TEXT NOT NULL, "
    "interactions TEXT NOT NULL, lamport INTEGER NOT NULL, node TEXT NOT NULL, "
    "event_id TEXT NOT NULL, ts REAL)",
    "CREATE TABLE IF NOT EXISTS erased_entities (entity TEXT PRIMARY KEY, memory TEXT NOT NULL) "
    "WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS erase_receipts (memory TEXT NOT NULL, node TEXT NOT NULL, "
    "messages INTEGER NOT NULL, lamport INTEGER NOT NULL, event_id TEXT NOT NULL, ts REAL, "
    "PRIMARY KEY (memory, node)) WITHOUT ROWID",
]
ERASURE_TABLES = ("erasures", "erased_entities", "erase_receipts")
ERASURE_DIGEST = (
    ("erasures", "SELECT * FROM erasures ORDER BY memory"),
    ("erased_entities", "SELECT * FROM erased_entities ORDER BY entity"),
    ("erase_receipts", "SELECT * FROM erase_receipts ORDER BY memory, node"),
)

#: Conflict resolution (`memories.py`): the versions an edit's `merges` supersede, and the
#: hive's settings (`settings.py`). A version's merges go with it when it is deleted (erasure).
CONFLICT_DDL = [
    "CREATE TABLE IF NOT EXISTS memory_merges (mid INTEGER NOT NULL, event_id TEXT NOT NULL, "
    "merged_lamport INTEGER NOT NULL, merged_node TEXT NOT NULL, merged_event TEXT NOT NULL, "
    "PRIMARY KEY (mid, event_id, merged_event)) WITHOUT ROWID",
    "CREATE TRIGGER IF NOT EXISTS memory_merges_gone AFTER DELETE ON memory_versions BEGIN "
    "DELETE FROM memory_merges WHERE mid = old.mid AND event_id = old.event_id; END",
    "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
    "lamport INTEGER NOT NULL, node TEXT NOT NULL, event_id TEXT NOT NULL) WITHOUT ROWID",
]
CONFLICT_TABLES = ("memory_merges", "settings")

PROJECTION_DDL = [
    "CREATE TABLE positions (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE TABLE applied (event_id TEXT PRIMARY KEY, type TEXT NOT NULL, node TEXT NOT NULL, "
    "lamport INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE dead_letters (stream TEXT NOT NULL, seq INTEGER NOT NULL, "
    "reason TEXT NOT NULL, msg_id TEXT, data BLOB, at REAL NOT NULL, PRIMARY KEY (stream, seq))",
    # memories: fields of the winning memory.stored share its stamp; text, space and the
    # tombstone each have their own; strength is a sum in milli-units.
    "CREATE TABLE memories (mid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, agent TEXT, "
    "session TEXT, user_message TEXT, response TEXT, source TEXT, confidence REAL, "
    "shared INTEGER, ts REAL, "
    f"{_stamp('stored')}, text TEXT, {_stamp('text')}, space TEXT, {_stamp('space')}, "
    f"deleted INTEGER NOT NULL DEFAULT 0, {_stamp('deleted')}, "
    "strength INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX memories_by_ts ON memories (ts)",
    "CREATE INDEX memories_forgotten ON memories (mid) WHERE deleted = 1",
    # Child tables of memories refer to the local integer `mid` (not the random uuid) so that
    # new rows append at the end of their B-trees; the digest maps mid back to the memory id.
    "CREATE TABLE memory_versions (mid INTEGER NOT NULL, event_id TEXT NOT NULL, "
    "base_lamport INTEGER, base_node TEXT, base_event TEXT, lamport INTEGER NOT NULL, "
    "node TEXT NOT NULL, text TEXT NOT NULL)",
    "CREATE INDEX memory_versions_by_base ON memory_versions (mid, base_event)",
    "CREATE TABLE memory_tags (mid INTEGER NOT NULL, tag TEXT NOT NULL, event_id TEXT NOT NULL, "
    "PRIMARY KEY (mid, tag, event_id)) WITHOUT ROWID",
    "CREATE TABLE memory_untags (mid INTEGER NOT NULL, tag TEXT NOT NULL, "
    "observed TEXT NOT NULL, PRIMARY KEY (mid, tag, observed)) WITHOUT ROWID",
    _fts("memories_fts", "memories", "text", "mid"),
    "CREATE TABLE fts_progress (name TEXT PRIMARY KEY, high INTEGER NOT NULL)",
    "INSERT INTO fts_progress (name, high) VALUES ('memories', 0)",
    *_fts_triggers("memories", "memories_fts", "text", LIVE, _MEMORY_WATCH, MEMORY_INDEXED),
    _fts("memories_forgotten_fts", "memories", "text", "mid"),
    *_fts_triggers(
        "memories", "memories_forgotten_fts", "text", GONE, _MEMORY_WATCH, MEMORY_INDEXED
    ),
    # knowledge: a document row holds the winning ingest and the highest removal stamp.
    "CREATE TABLE knowledge_documents (id TEXT PRIMARY KEY, source TEXT, title TEXT, kind TEXT, "
    f"content_hash TEXT, size INTEGER, total_chunks INTEGER, ts REAL, {_stamp('ingest')}, "
    f"{_stamp('removed')})",
    "CREATE TABLE knowledge_chunks (id TEXT PRIMARY KEY, document TEXT NOT NULL, "
    "source TEXT NOT NULL, chunk_index INTEGER NOT NULL, total_chunks INTEGER NOT NULL, "
    "text TEXT NOT NULL, content_hash TEXT NOT NULL, ts REAL, lamport INTEGER NOT NULL, "
    "node TEXT NOT NULL, event_id TEXT NOT NULL)",
    "CREATE INDEX knowledge_chunks_by_document ON knowledge_chunks (document, chunk_index)",
    _fts("knowledge_fts", "knowledge_chunks", "text"),
    *_fts_triggers("knowledge_chunks", "knowledge_fts", "text", "1", "text"),
    # devices: one row per (device, field), each field last-writer-wins on its own.
    "CREATE TABLE devices (device TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, "
    "lamport INTEGER NOT NULL, node TEXT NOT NULL, event_id TEXT NOT NULL, "
    "PRIMARY KEY (device, field)) WITHOUT ROWID",
    "CREATE TABLE readings (id TEXT PRIMARY KEY, source TEXT NOT NULL, window_start REAL, "
    "window_end REAL, count INTEGER, min REAL, max REAL, mean REAL, unit TEXT, ts REAL, "
    "lamport INTEGER NOT NULL, node TEXT NOT NULL, event_id TEXT NOT NULL)",
    "CREATE TABLE observations (id TEXT PRIMARY KEY, text TEXT NOT NULL, kind TEXT, "
    "readings TEXT, model TEXT, confidence REAL, ts REAL, lamport INTEGER NOT NULL, "
    "node TEXT NOT NULL, event_id TEXT NOT NULL)",
    _fts("observations_fts", "observations", "text"),
    *_fts_triggers("observations", "observations_fts", "text", "1", "text"),
    # The policy columns come last: v4 added them to existing tables with ALTER TABLE.
    "CREATE TABLE agents (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, ts REAL, "
    "lamport INTEGER NOT NULL, node TEXT NOT NULL, event_id TEXT NOT NULL, "
    f"{', '.join(f'{c} {t}' for c, t in AGENT_POLICY_COLUMNS)})",
    AGENTS_BY_NAME_DDL,
    "CREATE TABLE embeddings (entity TEXT NOT NULL, model TEXT NOT NULL, dim INTEGER NOT NULL, "
    "vector BLOB NOT NULL, content_hash TEXT NOT NULL, event_id TEXT NOT NULL, "
    "lamport INTEGER NOT NULL, node TEXT NOT NULL, PRIMARY KEY (entity, model))",
    *EMBEDDING_CHANGES_DDL,
    EMBEDDINGS_BY_HASH_DDL,
    "CREATE TABLE interactions (event_id TEXT PRIMARY KEY, entity TEXT NOT NULL, "
    "node TEXT NOT NULL, lamport INTEGER NOT NULL, ts REAL, query TEXT NOT NULL, response TEXT, "
    "tool TEXT, outcome TEXT, feedback TEXT, latency_ms REAL, agent TEXT, session TEXT)",
    "CREATE TABLE tasks (id TEXT PRIMARY KEY, kind TEXT, prompt TEXT, requires TEXT, "
    f"min_tier TEXT, requested_by TEXT, {_stamp('requested')}, assignee TEXT, "
    f"assign_reason TEXT, {_stamp('assigned')}, result TEXT, {_stamp('completed')}, "
    f"status TEXT, {_stamp('status')})",
    *ERASURE_DDL,
    *CONFLICT_DDL,
]

#: Every projection table (virtual tables included); dropping a table drops its triggers.
PROJECTION_TABLES = (
    "positions",
    "applied",
    "dead_letters",
    "memories",
    "fts_progress",
    "memory_versions",
    "memory_tags",
    "memory_untags",
    "memories_fts",
    "memories_forgotten_fts",
    "knowledge_documents",
    "knowledge_chunks",
    "knowledge_fts",
    "devices",
    "readings",
    "observations",
    "observations_fts",
    "agents",
    "embeddings",
    "embedding_changes",
    "interactions",
    "tasks",
    *ERASURE_TABLES,
    *CONFLICT_TABLES,
)

_MEMORY_ID = "(SELECT m.id FROM memories m WHERE m.mid = t.mid) AS memory"

#: The replicated state: per table, a SELECT of its rows in a node-independent order, without
#: local rowids (`mid` is replaced by the memory's id).
DIGEST_QUERIES: tuple[tuple[str, str], ...] = (
    ("applied", "SELECT * FROM applied ORDER BY event_id"),
    ("memories", "SELECT * FROM memories ORDER BY id"),
    (
        "memory_versions",
        f"SELECT {_MEMORY_ID}, event_id, base_lamport, base_node, base_event, lamport, node, "
        "text FROM memory_versions t ORDER BY event_id",
    ),
    ("memory_tags", f"SELECT {_MEMORY_ID}, tag, event_id FROM memory_tags t ORDER BY 1, 2, 3"),
    (
        "memory_untags",
        f"SELECT {_MEMORY_ID}, tag, observed FROM memory_untags t ORDER BY 1, 2, 3",
    ),
    ("knowledge_documents", "SELECT * FROM knowledge_documents ORDER BY id"),
    ("knowledge_chunks", "SELECT * FROM knowledge_chunks ORDER BY id"),
    ("devices", "SELECT * FROM devices ORDER BY device, field"),
    ("readings", "SELECT * FROM readings ORDER BY id"),
    ("observations", "SELECT * FROM observations ORDER BY id"),
    ("agents", "SELECT * FROM agents ORDER BY id"),
    ("embeddings", "SELECT * FROM embeddings ORDER BY entity, model"),
    ("interactions", "SELECT * FROM interactions ORDER BY event_id"),
    ("tasks", "SELECT * FROM tasks ORDER BY id"),
    *ERASURE_DIGEST,
    (
        "memory_merges",
        f"SELECT {_MEMORY_ID}, event_id, merged_lamport, merged_node, merged_event "
        "FROM memory_merges t ORDER BY 1, 2, 5",
    ),
    ("settings", "SELECT * FROM settings ORDER BY key"),
)
#: Columns left out of the digest: local row numbers.
LOCAL_COLUMNS = {"memories": ("mid",)}


def create_projection_tables(conn: sqlite3.Connection) -> None:
    for statement in PROJECTION_DDL:
        conn.execute(statement)


def drop_projection_tables(conn: sqlite3.Connection) -> None:
    for table in PROJECTION_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def _v1(conn: sqlite3.Connection) -> None:
    create_projection_tables(conn)


def _v2(conn: sqlite3.Connection) -> None:
    """The embedding change log (already there when v1 just created every table)."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'embedding_changes'"
    ).fetchone()
    if found:
        return
    for statement in EMBEDDING_CHANGES_DDL:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO embedding_changes (row, model) SELECT rowid, model FROM embeddings "
        "ORDER BY rowid"
    )


def _v3(conn: sqlite3.Connection) -> None:
    conn.execute(EMBEDDINGS_BY_HASH_DDL)


def _v4(conn: sqlite3.Connection) -> None:
    """Agents' working-memory policy columns and their lookup by name (already there when v1
    just created every table)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(agents)")}
    for column, kind in AGENT_POLICY_COLUMNS:
        if column not in have:
            conn.execute(f"ALTER TABLE agents ADD COLUMN {column} {kind}")
    conn.execute(AGENTS_BY_NAME_DDL)


def _v5(conn: sqlite3.Connection) -> None:
    """Erasure's tables (already there when v1 just created every table)."""
    for statement in ERASURE_DDL:
        conn.execute(statement)


def _v6(conn: sqlite3.Connection) -> None:
    """Conflict resolution's merges and the hive's settings (already there when v1 just
    created every table)."""
    for statement in CONFLICT_DDL:
        conn.execute(statement)


#: schema version -> the step that brings a database from the version below up to it.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _v1,
    2: _v2,
    3: _v3,
    4: _v4,
    5: _v5,
    6: _v6,
}


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection) -> None:
    """Create the node tables, then run every migration above the stored schema version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in NODE_TABLES:
            conn.execute(statement)
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise ProjectionError(
                f"projection schema v{current} is newer than this hivebrain (v{SCHEMA_VERSION})"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
