"""The projection store: one SQLite file, written by batches of events (`batches.py`) and
read through the query modules of each family, recall and vector search.
Why: docs/projections.md.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import structlog

from hivebrain.errors import ProjectionError
from hivebrain.events.clock import MAX_CLOCK_JUMP

from . import device_queries, erasure_queries, knowledge_queries, memory_queries
from .batches import BatchApplier, BatchResult, DeadLetter, Delivery
from .clock_store import SqliteClockStore, read_high
from .digest import digest
from .memory_queries import Conflict, MemoryHit, MemoryRow, Strategy
from .recall import RecallHit, RecallMode, RecallResult, recall
from .schema import DIGEST_QUERIES, create_projection_tables, drop_projection_tables, migrate
from .sqlite import connect, sqlite_errors
from .vectors import DEFAULT_THRESHOLD, KINDS, Kind, VectorHit, VectorSearch

__all__ = [
    "BatchResult",
    "Conflict",
    "DeadLetter",
    "Delivery",
    "MemoryHit",
    "MemoryRow",
    "ProjectionStore",
    "RecallHit",
    "RecallResult",
    "SqliteClockStore",
    "VectorHit",
]


log = structlog.get_logger(__name__)


class ProjectionStore(BatchApplier):
    """The writing of `BatchApplier` (batches, positions, dead letters) plus every query.

    `vector_threshold`: above this many vectors of a model, vector search goes through an
    hnswlib index persisted next to the database (see `hnsw_index.py`)."""

    def __init__(
        self,
        path: Path | str,
        *,
        strategy: Strategy = "lww",
        vector_threshold: int = DEFAULT_THRESHOLD,
        max_clock_jump: int = MAX_CLOCK_JUMP,
    ) -> None:
        self.path = Path(path)
        self.strategy: Strategy = strategy
        conn = connect(path)
        try:
            migrate(conn)
        except sqlite_errors() as exc:
            conn.close()
            raise ProjectionError(f"cannot prepare projection database {path}: {exc}") from None
        super().__init__(conn, max_clock_jump)
        db = None if str(path) == ":memory:" else self.path
        self.vectors = VectorSearch(self._conn, db, threshold=vector_threshold)

    def reset(self) -> None:
        """Drop and recreate every projection table; the clock and meta stay. The vector
        indexes derived from them are deleted too."""
        with self._transaction() as conn:
            drop_projection_tables(conn)
            create_projection_tables(conn)
        self.vectors.invalidate()

    def scrub_erased(self, event_ids: Sequence[str]) -> None:
        """After an erase whose messages were deleted from the streams: forget those events'
        ids and dead letters, merge the keyword indexes (dropping the erased memories'
        terms), drop the vector index files, then VACUUM (an update leaves the old bytes of a
        row in its page's free space, which only a rewrite of the file removes) and truncate
        the WAL; with secure_delete on, so the freed bytes are zeroed."""
        self._conn.execute("PRAGMA secure_delete = ON")
        try:
            with self._transaction() as conn:
                ids = json.dumps(list(event_ids))
                for table, column in (("applied", "event_id"), ("dead_letters", "msg_id")):
                    conn.execute(
                        f"DELETE FROM {table} WHERE {column} IN (SELECT value FROM json_each(?))",
                        (ids,),
                    )
                for fts in ("memories_fts", "memories_forgotten_fts"):
                    conn.execute(f"INSERT INTO {fts} ({fts}) VALUES ('optimize')")
            self.vectors.invalidate()
            try:
                self._conn.execute("VACUUM")
            except sqlite_errors() as exc:  # e.g. a read in progress on this connection
                log.warning("projection.vacuum_failed", error=str(exc))
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite_errors() as exc:
                raise ProjectionError(f"projection checkpoint failed: {exc}") from None
        finally:
            self._conn.execute("PRAGMA secure_delete = OFF")

    def erasure(self, memory: str) -> erasure_queries.Erasure | None:
        return erasure_queries.erasure(self._conn, memory)

    def erasures(self) -> list[erasure_queries.Erasure]:
        return erasure_queries.erasures(self._conn)

    # -- reading ----------------------------------------------------------------------------

    def digest(self) -> str:
        return digest(self._conn)

    def search_memories(
        self,
        query: str,
        *,
        limit: int = 10,
        agent: str | None = None,
        space: str | None = None,
        tags: Sequence[str] = (),
        node: str | None = None,
        since: float | None = None,
        until: float | None = None,
        all_agents: bool = False,
        include_forgotten: bool = False,
    ) -> list[MemoryHit]:
        """Keyword search (FTS5, BM25; best first). Query text is never FTS syntax."""
        filters = memory_queries.Filters(agent, space, tuple(tags), node, since, until, all_agents)
        return memory_queries.search(self._conn, query, limit, filters, include_forgotten)

    def search_vectors(
        self,
        query_vector: bytes,
        model: str,
        *,
        limit: int = 10,
        kinds: Sequence[Kind] = KINDS,
        agent: str | None = None,
        space: str | None = None,
        tags: Sequence[str] = (),
        node: str | None = None,
        since: float | None = None,
        until: float | None = None,
        all_agents: bool = False,
        exact: bool = False,
    ) -> list[VectorHit]:
        """Live memories, knowledge chunks and observations nearest to `query_vector` (float32
        little-endian) among the vectors of `model`. `node`, `since` and `until` apply to
        every kind; `space` or `tags`, when either is given, limit the hits to memories, and
        the agent decides whose memories match. `exact` skips the candidate index."""
        filters = memory_queries.Filters(agent, space, tuple(tags), node, since, until, all_agents)
        return self.vectors.search(
            query_vector, model, limit=limit, filters=filters, kinds=kinds, exact=exact
        )

    def recall(
        self,
        query_text: str,
        *,
        query_vector: bytes | None = None,
        model: str | None = None,
        mode: RecallMode = "hybrid",
        limit: int = 10,
        agent: str | None = None,
        space: str | None = None,
        tags: Sequence[str] = (),
        node: str | None = None,
        since: float | None = None,
        until: float | None = None,
        all_agents: bool = False,
        kinds: Sequence[Kind] = KINDS,
    ) -> RecallResult:
        """Memories, knowledge chunks and observations (those of `kinds`) by keywords, vector
        or both (reciprocal rank fusion); forgotten memories and removed documents are left
        out. `node`, `since` and `until` apply to every kind; `space` and `tags` exist on
        memories only, so with either of them only memories match; the agent decides whose
        memories match (knowledge and observations belong to no agent). Without a query
        vector or vectors of `model`, keywords answer and the result's `note` says so."""
        filters = memory_queries.Filters(agent, space, tuple(tags), node, since, until, all_agents)
        return recall(
            self._conn,
            self.vectors,
            query_text,
            query_vector=query_vector,
            model=model,
            mode=mode,
            limit=limit,
            filters=filters,
            kinds=kinds,
        )

    def list_memories(
        self,
        *,
        limit: int = 50,
        agent: str | None = None,
        space: str | None = None,
        tags: Sequence[str] = (),
        node: str | None = None,
        since: float | None = None,
        until: float | None = None,
        all_agents: bool = False,
        spaces: Sequence[str] = (),
        include_forgotten: bool = False,
    ) -> list[MemoryHit]:
        """Memories, most recent first (score 0.0), in `space` or any of `spaces`. Like every
        memory read, only `agent`'s (default: the default agent's) and shared ones unless
        `all_agents` (see `memory_queries.Filters`)."""
        filters = memory_queries.Filters(
            agent, space, tuple(tags), node, since, until, all_agents, tuple(spaces)
        )
        return memory_queries.recent(self._conn, limit, filters, include_forgotten)

    def memory(self, entity: str) -> MemoryRow | None:
        return memory_queries.memory(self._conn, entity, self.strategy)

    def conflicts(self) -> list[Conflict]:
        return memory_queries.conflicts(self._conn, self.strategy)

    def search_knowledge(self, query: str, limit: int = 10) -> list[knowledge_queries.ChunkHit]:
        return knowledge_queries.search(self._conn, query, limit)

    def device(self, name: str) -> device_queries.DeviceRecord | None:
        return device_queries.device(self._conn, name)

    def devices(self) -> list[device_queries.DeviceRecord]:
        return device_queries.devices(self._conn)

    def stats(self) -> dict[str, int | dict[str, int]]:
        """Row counts per replicated table, dead letters, stream positions and the clock."""
        conn = self._conn
        out: dict[str, int | dict[str, int]] = {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table, _ in DIGEST_QUERIES
        }
        out["dead_letters"] = int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])
        out["positions"] = dict(conn.execute("SELECT stream, seq FROM positions").fetchall())
        out["clock"] = read_high(conn)
        return out

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's connection, for read queries of other modules (same thread as writes)."""
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ProjectionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
