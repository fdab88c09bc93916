"""Liveness without events: heartbeats on core NATS, last-seen kept in memory and node-local.

Every node publishes a small JSON heartbeat on `hivebrain.heartbeat.<node>` every `interval`
seconds: core NATS, not JetStream, so nothing is stored and no event is written. A
`LivenessTracker` subscribes to `hivebrain.heartbeat.*`, keeps the last heartbeat of each node
in memory, and writes it at most once per `flush_interval` to the node-local table `liveness`
of the node's SQLite file, so other processes (the CLI) can read it. That table is node state,
like the clock: not part of the projection, its digest or a rebuild.

A node is online while its last heartbeat is at most 3 x its own interval old (the interval
travels in the heartbeat); a reader of the table allows one flush interval more. Times are the
receiver's clock, so skew between machines does not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import structlog

from hivebrain.background import cancel_and_wait
from hivebrain.projections.sqlite import connect, sqlite_errors

log = structlog.get_logger(__name__)

SUBJECT_PREFIX = "hivebrain.heartbeat"
SUBJECT_ALL = f"{SUBJECT_PREFIX}.*"
DEFAULT_INTERVAL_S = 5.0
MISSED_BEATS = 3  # offline after this many intervals without a heartbeat
FLUSH_INTERVAL_S = 1.0

LIVENESS_DDL = (
    "CREATE TABLE IF NOT EXISTS liveness (node TEXT PRIMARY KEY, last_seen REAL NOT NULL, "
    "load REAL, mem REAL, interval REAL NOT NULL)"
)
_UPSERT = (
    "INSERT INTO liveness (node, last_seen, load, mem, interval) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (node) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), "
    "load = excluded.load, mem = excluded.mem, interval = excluded.interval"
)


def heartbeat_subject(node: str) -> str:
    return f"{SUBJECT_PREFIX}.{node}"


@dataclass(frozen=True, slots=True)
class Seen:
    """The last heartbeat of one node, as received here."""

    node: str
    last_seen: float  # receiver's time.time()
    load: float | None  # 1-minute load average / logical CPUs
    mem: float | None  # memory in use, percent
    interval: float  # the sender's heartbeat interval, seconds

    def online(self, now: float | None = None, lag: float = 0.0) -> bool:
        """Heard from within `MISSED_BEATS` intervals. `lag`: how stale the record may be
        beyond that (`FLUSH_INTERVAL_S` for a row read from the liveness table)."""
        now = time.time() if now is None else now
        return now - self.last_seen <= MISSED_BEATS * self.interval + lag


def system_load() -> tuple[float | None, float | None]:
    """(1-minute load per logical CPU, memory percent in use); None where unavailable."""
    load: float | None
    mem: float | None
    try:
        load = round(psutil.getloadavg()[0] / max(1, psutil.cpu_count(logical=True) or 1), 3)
    except (OSError, AttributeError):
        load = None
    try:
        mem = float(psutil.virtual_memory().percent)
    except OSError:
        mem = None
    return load, mem


def encode_heartbeat(node: str, interval: float, now: float | None = None) -> bytes:
    load, mem = system_load()
    body = {
        "node": node,
        "ts": time.time() if now is None else now,
        "load": load,
        "mem": mem,
        "interval": interval,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def decode_heartbeat(subject: str, data: bytes, received: float) -> Seen | None:
    """A heartbeat as `Seen` (node from the subject), or None if it is not one."""
    prefix = SUBJECT_PREFIX + "."
    node = subject[len(prefix) :] if subject.startswith(prefix) else ""
    if not node or "." in node:
        return None
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    interval = _number(body.get("interval"))
    if interval is None or interval <= 0:
        interval = DEFAULT_INTERVAL_S
    return Seen(node, received, _number(body.get("load")), _number(body.get("mem")), interval)


class Heartbeat:
    """Publishes this node's heartbeat on core NATS every `interval` seconds (`nc`: a
    connected nats-py client)."""

    def __init__(self, nc: Any, node: str, interval: float = DEFAULT_INTERVAL_S) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self._nc = nc
        self.node = node
        self.interval = interval
        self.subject = heartbeat_subject(node)
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        await self._nc.publish(self.subject, encode_heartbeat(self.node, self.interval))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"heartbeat-{self.node}")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception as exc:  # disconnected, draining: try again next beat
                log.debug("heartbeat.failed", node=self.node, error=str(exc))
            await asyncio.sleep(self.interval)


def ensure_liveness_table(conn: sqlite3.Connection) -> None:
    conn.execute(LIVENESS_DDL)


def read_liveness(db_path: Path | str) -> dict[str, Seen]:
    """The liveness table of a node's SQLite file, as another process sees it; {} if absent."""
    if not Path(db_path).exists():
        return {}
    conn = connect(db_path)
    try:
        rows = conn.execute("SELECT node, last_seen, load, mem, interval FROM liveness").fetchall()
    except sqlite_errors():  # no node has tracked liveness here yet
        return {}
    finally:
        conn.close()
    return {row[0]: Seen(*row) for row in rows}


class LivenessTracker:
    """Last heartbeat per node: in memory at once, in the `liveness` table within
    `flush_interval` (one transaction for everything received meanwhile)."""

    def __init__(
        self,
        nc: Any,
        db_path: Path | str,
        *,
        flush_interval: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._nc = nc
        self._db_path = db_path
        self._flush_interval = flush_interval
        self._clock = clock
        self._seen: dict[str, Seen] = {}
        self._dirty: dict[str, Seen] = {}
        self._sub: Any = None
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def seen(self) -> dict[str, Seen]:
        return dict(self._seen)

    def online(self, node: str, now: float | None = None) -> bool:
        seen = self._seen.get(node)
        return seen is not None and seen.online(now)

    def online_nodes(self, now: float | None = None) -> set[str]:
        return {node for node, seen in self._seen.items() if seen.online(now)}

    async def start(self) -> None:
        self._conn = connect(self._db_path)
        ensure_liveness_table(self._conn)
        self._sub = await self._nc.subscribe(SUBJECT_ALL, cb=self._on_message)
        self._task = asyncio.create_task(self._flush_loop(), name="liveness-flush")

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self._conn is not None:
            await self.flush()
            self._conn.close()
            self._conn = None

    async def _on_message(self, msg: Any) -> None:
        seen = decode_heartbeat(msg.subject, msg.data, self._clock())
        if seen is None:
            log.debug("heartbeat.ignored", subject=msg.subject)
            return
        self._seen[seen.node] = seen
        self._dirty[seen.node] = seen

    async def flush(self) -> int:
        """Write what arrived since the last flush; return how many nodes were written."""
        if not self._dirty or self._conn is None:
            return 0
        batch, self._dirty = list(self._dirty.values()), {}
        rows = [(s.node, s.last_seen, s.load, s.mem, s.interval) for s in batch]
        if not await asyncio.to_thread(self._write, self._conn, rows):
            for seen in batch:  # keep them for the next flush, unless newer ones came
                self._dirty.setdefault(seen.node, seen)
            return 0
        return len(rows)

    @staticmethod
    def _write(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> bool:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_UPSERT, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite_errors() as exc:  # best effort: the next flush tries again
            log.warning("liveness.write_failed", error=str(exc))
            return False
        return True

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                await self.flush()
            except Exception as exc:
                log.warning("liveness.flush_failed", error=str(exc))
