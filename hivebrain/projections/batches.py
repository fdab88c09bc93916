"""Applying stream deliveries to the projection tables: `BatchApplier`, the writing half of
`ProjectionStore`, with the stream positions and dead letters it keeps. A batch's rows,
`applied` set, positions, dead letters and clock high-water mark commit in one transaction.
Why: docs/projections.md.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import structlog

from hivebrain.errors import InvalidEvent, OutOfTurn, ProjectionError, UnknownEventType
from hivebrain.events import Event, Payload, decode
from hivebrain.events.clock import MAX_CLOCK_JUMP
from hivebrain.events.subjects import EVENTS_STREAM
from hivebrain.events.subjects import subject as subject_of

from .clock_store import OBSERVE_SQL, read_high
from .devices import DEVICES
from .erasures import ERASURES, split_erased
from .knowledge import KNOWLEDGE
from .memories import MEMORIES
from .misc import AGENTS, EMBEDDINGS, INTERACTIONS, TASKS
from .observations import OBSERVATIONS
from .projection import Apply, Projection
from .sqlite import sqlite_errors

log = structlog.get_logger(__name__)

#: SQLite's default: a checkpoint once the WAL holds this many pages.
WAL_AUTOCHECKPOINT_PAGES = 1000

PROJECTIONS: tuple[Projection, ...] = (
    MEMORIES,
    KNOWLEDGE,
    DEVICES,
    OBSERVATIONS,
    AGENTS,
    EMBEDDINGS,
    INTERACTIONS,
    TASKS,
    ERASURES,
)
HANDLERS: dict[type[Payload], Apply] = {
    cls: apply for projection in PROJECTIONS for cls, apply in projection.handlers.items()
}
OWNERS: dict[type[Payload], Projection] = {
    cls: projection for projection in PROJECTIONS for cls in projection.handlers
}


def check_author(event: Event, subject: str) -> None:
    """The event must say what its subject says: the server only lets a node publish under
    `hive.<its name>.>`, so a body claiming another node (or another entity) is a forgery."""
    expected = subject_of(event)
    if subject != expected:
        raise InvalidEvent(f"stored under {subject} but the event says {expected}")


class Delivery(NamedTuple):
    """One message as read from a JetStream stream (a tuple: one is made per message)."""

    stream: str  # "EVENTS" or "HIVE"
    seq: int  # stream sequence
    data: bytes  # msgpack body
    msg_id: str | None = None  # the Nats-Msg-Id header (== event_id) if present
    subject: str | None = None  # the subject the server stored it under (checked below)
    # For an own event read from HIVE: its sequence in this node's EVENTS (the HIVE copy of a
    # message is dead-lettered under the EVENTS original, so a message is dead-lettered once).
    origin: int | None = None

    def letter_key(self) -> tuple[str, int]:
        """Where a dead letter of this delivery is filed: its original stream and sequence."""
        return (EVENTS_STREAM, self.origin) if self.origin is not None else (self.stream, self.seq)


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    dead: int = 0
    max_lamport: int = 0
    # Memories erased by this batch, or whose late copies it dropped: their messages are to be
    # deleted from this node's streams (`hivebrain/node/eraser.py`).
    erasing: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    stream: str
    seq: int
    reason: str
    msg_id: str | None
    data: bytes
    at: float


class BatchApplier:
    """Applies events and stream deliveries to the projection tables of one open (migrated)
    connection, and reads back the stream positions and dead letters it recorded.

    `max_clock_jump`: a delivered event stamped more than this above the node's clock is
    dead-lettered, so that one bad or hostile stamp can never push the clock to its end (the
    clock rises with every applied event, and a node could write nothing more)."""

    def __init__(self, conn: sqlite3.Connection, max_clock_jump: int = MAX_CLOCK_JUMP) -> None:
        if max_clock_jump < 1:
            raise ValueError("max_clock_jump must be >= 1")
        self._conn = conn
        self._finish = True
        self.max_clock_jump = max_clock_jump

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite_errors() as exc:
            raise ProjectionError(f"projection write failed: {exc}") from None

    def apply_batch(
        self,
        deliveries: Sequence[Delivery],
        *,
        finish: bool = True,
        expect: Mapping[str, int] | None = None,
    ) -> BatchResult:
        """Apply stream deliveries in one transaction, recording positions and dead letters.

        `expect`: the stored position each of these streams must have now, or the batch is
        refused with OutOfTurn and nothing is written. A caller that hands over a batch before
        the previous one has committed passes the positions that one leaves: if it failed,
        the next one cannot commit positions past the messages the failed one still holds.

        A delivery whose `Nats-Msg-Id` (= event id) is already applied, or repeated in the
        batch (the same event read from EVENTS and from HIVE), is counted as a duplicate
        without being decoded.

        `finish=False` leaves the projections' end-of-batch work (the keyword index of new
        memories) for a later `finish_pending`: a replay indexes everything once at its end,
        which is cheaper than after every batch and spares the index every change made to a
        memory before it is indexed. Rows, positions and the clock commit as usual.
        """
        self._finish = finish
        try:
            return self._apply_batch(deliveries, expect or {})
        finally:
            self._finish = True

    def finish_pending(self) -> None:
        """Run every projection's end-of-batch work now, in its own transaction: what batches
        applied with `finish=False` left (idempotent; cheap when nothing is left)."""
        with self._transaction() as conn:
            for projection in PROJECTIONS:
                if projection.finish is not None:
                    projection.finish(conn)

    def begin_replay(self) -> None:
        """A replay writes the whole projection in a row of batches: no automatic WAL
        checkpoint after each commit (every one would copy the batch's pages into the database
        file a second time and sync it); `end_replay` checkpoints once. Durability is the same:
        a commit is in the WAL either way, and a crash leaves a WAL the next open recovers."""
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")

    def end_replay(self) -> None:
        """Index what the replay's batches left (`finish_pending`), checkpoint the WAL into the
        database file and truncate it, and checkpoint automatically again."""
        self.finish_pending()
        try:
            (busy, _, _) = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                log.warning("projection.checkpoint_busy")  # done by a later checkpoint
        except sqlite_errors() as exc:
            raise ProjectionError(f"projection checkpoint failed: {exc}") from None
        finally:
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")

    def _apply_batch(
        self, deliveries: Sequence[Delivery], expect: Mapping[str, int]
    ) -> BatchResult:
        result = BatchResult()
        with self._transaction() as conn:
            positions = dict(conn.execute("SELECT stream, seq FROM positions").fetchall())
            stale = {s: q for s, q in expect.items() if positions.get(s, 0) != q}
            if stale:
                have = {s: positions.get(s, 0) for s in stale}
                raise OutOfTurn(f"stream positions are {have}, the batch expects {stale}")
            seen = dict(positions)
            todo = [d for d in deliveries if d.seq > positions.get(d.stream, 0)]
            known = self._applied_ids(conn, [d.msg_id for d in todo if d.msg_id])
            fresh_ids: set[str] = set()
            events: list[Event] = []
            origin: dict[str, Delivery] = {}
            dead: list[tuple[str, int, str, str | None, bytes, float]] = []
            high = read_high(conn)
            for d in todo:
                if d.seq > seen.get(d.stream, 0):
                    seen[d.stream] = d.seq
                if d.msg_id is not None and (d.msg_id in known or d.msg_id in fresh_ids):
                    result.duplicates += 1
                    continue
                try:
                    event = decode(d.data)
                    if d.subject is not None:
                        check_author(event, d.subject)
                    self._check_stamp(event, high)
                except (InvalidEvent, UnknownEventType) as exc:
                    dead.append((*d.letter_key(), str(exc), d.msg_id, d.data, time.time()))
                    continue
                high = max(high, event.lamport)
                events.append(event)
                origin[event.event_id] = d
                if d.msg_id is not None and d.msg_id == event.event_id:
                    fresh_ids.add(d.msg_id)
            for event, error in self._apply_or_isolate(conn, events, result, fresh_ids):
                d = origin[event.event_id]
                reason = f"cannot apply {event.type}: {type(error).__name__}: {error}"
                dead.append((*d.letter_key(), reason, d.msg_id, d.data, time.time()))
            if dead:
                # A message filed before (the same event read through EVENTS and HIVE) counts
                # once: rowcount is the number of letters new here.
                result.dead = conn.executemany(
                    "INSERT OR IGNORE INTO dead_letters (stream, seq, reason, msg_id, data, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    dead,
                ).rowcount
            changed = [(s, q) for s, q in seen.items() if q != positions.get(s)]
            if changed:
                conn.executemany(
                    "INSERT INTO positions (stream, seq) VALUES (?, ?) "
                    "ON CONFLICT (stream) DO UPDATE SET seq = max(seq, excluded.seq)",
                    changed,
                )
        return result

    def _check_stamp(self, event: Event, high: int) -> None:
        if event.lamport > high + self.max_clock_jump:
            raise InvalidEvent(
                f"lamport {event.lamport} is more than {self.max_clock_jump} above this "
                f"node's clock ({high}): refused, it would push the clock towards its end"
            )

    def advance(self, stream: str, seq: int) -> None:
        """Record that everything of `stream` up to `seq` is reflected (its events having
        arrived through another stream); positions never move back."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO positions (stream, seq) VALUES (?, ?) "
                "ON CONFLICT (stream) DO UPDATE SET seq = max(seq, excluded.seq)",
                (stream, seq),
            )

    def apply_events(self, events: Iterable[Event]) -> int:
        """Apply already decoded events (no stream positions); return how many were new."""
        result = BatchResult()
        with self._transaction() as conn:
            self._apply(conn, list(events), result, set())
        return result.applied

    def _apply_or_isolate(
        self, conn: sqlite3.Connection, events: list[Event], result: BatchResult, fresh: set[str]
    ) -> list[tuple[Event, Exception]]:
        """Apply the batch; if that fails for a reason other than the database being busy,
        apply its events one at a time and return the ones that cannot be applied (to be
        dead-lettered), so one poisonous event never blocks the stream behind it."""
        conn.execute("SAVEPOINT batch")
        try:
            self._apply(conn, events, result, fresh)
            conn.execute("RELEASE batch")
            return []
        except sqlite3.OperationalError:
            raise  # busy or locked: the whole batch is retried later
        except Exception:
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
        failed: list[tuple[Event, Exception]] = []
        total = BatchResult(duplicates=result.duplicates)
        for event in events:
            one = BatchResult()
            conn.execute("SAVEPOINT one")
            try:
                self._apply(conn, [event], one, fresh & {event.event_id})
                conn.execute("RELEASE one")
            except sqlite3.OperationalError:
                raise
            except Exception as exc:
                conn.execute("ROLLBACK TO one")
                conn.execute("RELEASE one")
                failed.append((event, exc))
                continue
            total.applied += one.applied
            total.duplicates += one.duplicates
            total.max_lamport = max(total.max_lamport, one.max_lamport)
            total.erasing |= one.erasing
        result.applied, result.duplicates = total.applied, total.duplicates
        result.max_lamport, result.erasing = total.max_lamport, total.erasing
        return failed

    @staticmethod
    def _applied_ids(conn: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        rows = conn.execute(
            "SELECT event_id FROM applied WHERE event_id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),),
        )
        return {row[0] for row in rows}

    def _apply(
        self, conn: sqlite3.Connection, events: list[Event], result: BatchResult, fresh: set[str]
    ) -> None:
        """Apply the events not applied before. `fresh`: ids already known to be new and
        unique in `events` (checked by the caller), so they are not looked up again."""
        if not events:
            return
        unique: dict[str, Event] = {}
        for e in events:
            unique.setdefault(e.event_id, e)
        known = self._applied_ids(conn, [key for key in unique if key not in fresh])
        new = [e for key, e in unique.items() if key not in known]
        result.duplicates += len(events) - len(new)
        new, dropped = split_erased(conn, new)
        if dropped:
            log.info("projection.erased_copies_dropped", count=len(dropped))
        result.erasing = result.erasing | frozenset(dropped.values())
        result.erasing |= {e.entity for e in new if e.type == "memory.erased"}
        result.applied = len(new)
        if not new:
            return
        result.max_lamport = max(e.lamport for e in new)
        conn.executemany(
            "INSERT INTO applied (event_id, type, node, lamport) VALUES (?, ?, ?, ?)",
            [(e.event_id, e.payload.TYPE, e.node, e.lamport) for e in new],
        )
        groups: dict[type[Payload], list[Event]] = {}
        for e in new:
            groups.setdefault(type(e.payload), []).append(e)
        touched: dict[str, Projection] = {}
        # In the handlers' own order, which puts the event that creates an entity
        # (memory.stored) before the ones that change it. Any order gives the same rows; this
        # one lets a batch's new memories take the plain-insert path even when the batch also
        # holds later changes to them.
        for cls, apply in HANDLERS.items():
            group = groups.get(cls)
            if group:
                apply(conn, group)
                touched[OWNERS[cls].name] = OWNERS[cls]
        for projection in touched.values():
            if self._finish and projection.finish is not None:
                projection.finish(conn)
        conn.execute(OBSERVE_SQL, (result.max_lamport,))

    def position(self, stream: str) -> int:
        row = self._conn.execute("SELECT seq FROM positions WHERE stream = ?", (stream,))
        found = row.fetchone()
        return int(found[0]) if found else 0

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        rows = self._conn.execute(
            "SELECT stream, seq, reason, msg_id, data, at FROM dead_letters "
            "ORDER BY at DESC, stream, seq LIMIT ?",
            (limit,),
        )
        return [DeadLetter(s, q, r, m, bytes(d or b""), a) for s, q, r, m, d, a in rows]
