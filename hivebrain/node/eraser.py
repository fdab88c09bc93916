"""The node's part of an erase: deleting an erased memory's messages from its own streams.

Deletes do not travel through sources and mirrors, so every node deletes from its own `EVENTS`
and `HIVE` every message about the erased entities (the memory's events, its vectors, the
interactions the erase names; the erase and its receipts stay, they hold no text). JetStream's
message delete overwrites the stored bytes. Then the projection forgets the deleted events' ids
and is scrubbed (`ProjectionStore.scrub_erased`), the node's tool cache (whose recall results
may quote the text) is emptied, and the node publishes its receipt, `memory.erase_confirmed`,
once.

It runs for every erase the projection applies, for every late copy the projection dropped (a
node that was cut off sends its copies when it returns: each node deletes them as they
arrive), and for every known erase when the node starts (one that was offline does its part
when it returns).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog
from nats.js.errors import NotFoundError

from hivebrain.background import cancel_and_wait
from hivebrain.errors import HivebrainError
from hivebrain.events import decode
from hivebrain.events.memory import MemoryEraseConfirmed, MemoryErased
from hivebrain.events.subjects import EVENTS_STREAM, H_MSG_ID, H_TYPE, HIVE_STREAM, ROOT
from hivebrain.node.projector import Projector
from hivebrain.projections.erasure_queries import Erasure
from hivebrain.projections.store import ProjectionStore
from hivebrain.transport.bus import Bus
from hivebrain.transport.event_writer import EventWriter, Stamps
from hivebrain.transport.topology import CACHE_BUCKET

log = structlog.get_logger(__name__)

KEPT = frozenset({MemoryErased.TYPE, MemoryEraseConfirmed.TYPE})
RETRY_S = 5.0


def subjects_of(erasure: Erasure) -> list[str]:
    """The subjects, on every author's branch, of the events an erase removes."""
    out = [f"{ROOT}.*.memory.{erasure.memory}", f"{ROOT}.*.embedding.{erasure.memory}"]
    out.extend(f"{ROOT}.*.interaction.{entity}" for entity in erasure.interactions)
    return out


def _type_of(header: str | None, data: bytes | None) -> str | None:
    """A message's event type: its header, or (published without one) its decoded body."""
    if header is not None:
        return header
    try:
        return decode(data or b"").type
    except HivebrainError:
        return None


class Eraser:
    def __init__(
        self, node: str, bus: Bus, clock: Stamps, db_path: str, projector: Projector
    ) -> None:
        self.node = node
        self._bus = bus
        self._clock = clock
        self._db_path = db_path
        self._projector = projector
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._store: ProjectionStore | None = None
        self.deleted = 0  # messages deleted since the start

    async def start(self) -> None:
        self._store = ProjectionStore(self._db_path)  # its own connection, for reads
        self.notify(e.memory for e in self._store.erasures())
        self._task = asyncio.create_task(self._run(), name="eraser")

    def notify(self, memories: Iterable[str]) -> None:
        """Erase these memories' messages from this node's streams soon."""
        before = len(self._pending)
        self._pending.update(memories)
        if len(self._pending) > before:
            self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self._store is not None:
            self._store.close()
            self._store = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                memory = self._pending.pop()
                try:
                    await self.erase(memory)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # NATS away, say: try again later
                    log.warning("erase.failed", memory=memory, error=str(exc), retry_in=RETRY_S)
                    self._pending.add(memory)
                    await asyncio.sleep(RETRY_S)

    async def erase(self, memory: str) -> int:
        """Delete the erased memory's messages from both streams; return how many."""
        assert self._store is not None
        erasure = self._store.erasure(memory)
        if erasure is None:
            return 0
        ids: list[str] = []
        for stream in (EVENTS_STREAM, HIVE_STREAM):
            for subject in subjects_of(erasure):
                ids.extend(await self._delete_all(stream, subject))
        if ids:
            await self._projector.scrub_erased(ids)
        self.deleted += len(ids)
        log.info("erase.done", memory=memory, messages=len(ids))
        if self.node not in erasure.confirmed:
            # Cached tool outputs (recall results) may quote the text: the cache is dropped.
            with contextlib.suppress(NotFoundError):
                await self._bus.js.purge_stream(f"KV_{CACHE_BUCKET}")
            publisher = await self._bus.publisher()
            try:
                writer = EventWriter(self.node, self._clock, publisher)
                await writer(MemoryEraseConfirmed(messages=len(ids)), entity=memory)
            finally:
                await publisher.close()
        return len(ids)

    async def _delete_all(self, stream: str, subject: str) -> list[str]:
        """Delete every message of `stream` on `subject` but the erase and its receipts;
        return the deleted events' ids (a message without one counts as '')."""
        js = self._bus.js
        deleted: list[str] = []
        seq = 1
        while True:
            try:
                msg = await js.get_msg(stream, seq, subject=subject, next=True)
            except NotFoundError:
                return deleted
            headers = msg.headers or {}
            if _type_of(headers.get(H_TYPE), msg.data) not in KEPT:
                with contextlib.suppress(NotFoundError):  # deleted meanwhile
                    await js.delete_msg(stream, msg.seq)
                deleted.append(headers.get(H_MSG_ID, ""))
            seq = msg.seq + 1
