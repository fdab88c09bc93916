"""Local projections: SQLite state derived from the events a node has seen.

`ProjectionStore` applies batches of stream deliveries (one transaction each, positions and
dead letters included) and answers queries; `SqliteClockStore` keeps the Lamport clock in the
same file; `connect` is the one way to open it.
"""

from .knowledge_queries import ChunkHit
from .memory_queries import Conflict, MemoryHit, MemoryRow, Version
from .sqlite import connect, connect_async, sqlite_module
from .store import BatchResult, DeadLetter, Delivery, ProjectionStore, SqliteClockStore

__all__ = [
    "BatchResult",
    "ChunkHit",
    "Conflict",
    "DeadLetter",
    "Delivery",
    "MemoryHit",
    "MemoryRow",
    "ProjectionStore",
    "SqliteClockStore",
    "Version",
    "connect",
    "connect_async",
    "sqlite_module",
]
