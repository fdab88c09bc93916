"""Publishing events to JetStream with bounded in-flight acks, a timeout on every ack and
retries that reuse the event's `Nats-Msg-Id` (so the stream's duplicate window drops repeats).

nats-py's `publish_async` can leave an ack future unresolved forever when the server answers
with an error, and costs a future lookup per message; this publisher owns one wildcard reply
subscription instead, resolves or fails every pending ack itself, and sweeps for overdue ones.

Each event's header block is encoded once, when it is published, and every attempt hands the
finished protocol frame (`HPUB`) to the connection's write buffer: nats-py's `publish` would
check and encode the five headers again on every call, which is most of its cost per message.
Clients without that buffer (anything but nats-py's asyncio client) get `publish` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

import structlog

from hivebrain.background import cancel_and_wait
from hivebrain.errors import BusError, PublishTimeout
from hivebrain.events import Event, encode
from hivebrain.events.codec import CONTENT_TYPE
from hivebrain.events.subjects import (
    H_CONTENT_TYPE,
    H_LAMPORT,
    H_MSG_ID,
    H_NODE,
    H_TYPE,
    headers,
    subject,
)

log = structlog.get_logger(__name__)

NO_RESPONDERS_RETRY_S = 0.2


@dataclass(frozen=True, slots=True)
class Ack:
    stream: str
    seq: int
    duplicate: bool = False


_HEADER_BLOCK = (
    f"NATS/1.0\r\n{H_MSG_ID}: %s\r\n{H_TYPE}: %s\r\n{H_NODE}: %s\r\n{H_LAMPORT}: %d\r\n"
    f"{H_CONTENT_TYPE}: {CONTENT_TYPE}\r\n\r\n"
).encode()


def header_block(event: Event) -> bytes:
    """The NATS header block of `headers(event)`, as it goes on the wire. Every value is a
    checked token (event id, node name, type name, integer): no CR, LF or ':' to escape."""
    return _HEADER_BLOCK % (
        event.event_id.encode(),
        event.type.encode(),
        event.node.encode(),
        event.lamport,
    )


@dataclass(slots=True)
class _Pending:
    subject: str
    data: bytes
    header: bytes  # the encoded header block
    event: Event
    future: asyncio.Future[Ack]
    deadline: float = 0.0
    attempts: int = 0
    stalls: int = 0  # "no responders" answers so far
    token: str = ""


@dataclass
class PublisherStats:
    published: int = 0
    retries: int = 0
    failed: int = 0
    duplicates: int = 0


class Publisher:
    """Publishes events; `publish` returns a future of the JetStream ack.

    At most `max_in_flight` events wait for an ack; `publish` waits for room beyond that.
    An ack not received within `ack_timeout` is retried (same message id, new reply subject)
    up to `retries` times, then the future fails with PublishTimeout. A "no responders" answer
    (no stream for the subject, or JetStream recovering) is retried every 0.2 s for
    `no_stream_patience` seconds without counting as a retry.
    """

    def __init__(
        self,
        nc: Any,
        *,
        max_in_flight: int = 2048,
        ack_timeout: float = 5.0,
        retries: int = 5,
        no_stream_patience: float = 5.0,
    ) -> None:
        self._nc = nc
        # Room for more events: once `max_in_flight` wait for their ack, `publish` waits
        # until a quarter of them are in, so a busy producer is woken once per many acks
        # rather than once per ack.
        self._max_in_flight = max_in_flight
        self._resume_at = max_in_flight - max(1, max_in_flight // 4)
        self._in_flight = 0
        self._room = asyncio.Event()
        self._room.set()
        self._ack_timeout = ack_timeout
        self._retries = retries
        self._no_stream_patience = no_stream_patience
        self._pending: dict[str, _Pending] = {}
        self._prefix = ""
        self._counter = 0
        self._sub: Any = None
        self._sweeper: asyncio.Task[None] | None = None
        # nats-py's asyncio client: frames go straight into its write buffer (see above).
        self._raw = all(
            hasattr(nc, name)
            for name in (
                "_send_command",
                "_flush_pending",
                "_flush_queue",
                "_max_pending_size",
                "_pending_data_size",
                "max_payload",
            )
        )
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = PublisherStats()

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._prefix + ".*", cb=self._on_reply)
        self._sweeper = asyncio.create_task(self._sweep(), name="publisher-sweep")

    async def close(self) -> None:
        if self._sweeper:
            await cancel_and_wait(self._sweeper)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(BusError("publisher closed before the ack"))
        self._pending.clear()
        self._in_flight = 0
        self._room.set()

    async def publish(self, event: Event) -> asyncio.Future[Ack]:
        """Send one event; the returned future resolves to its Ack."""
        if not self._prefix:
            raise BusError("publisher not started")
        data = encode(event)
        while self._in_flight >= self._max_in_flight:
            self._room.clear()
            await self._room.wait()
        self._in_flight += 1
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        pending = _Pending(subject(event), data, header_block(event), event, future)
        self._idle.clear()
        await self._send(pending)
        return future

    async def publish_wait(self, event: Event) -> Ack:
        return await (await self.publish(event))

    async def flush(self) -> None:
        """Wait until every event sent so far is acknowledged or failed."""
        await self._idle.wait()

    def _done(self, pending: _Pending) -> None:
        """`pending` leaves the publisher (acknowledged, failed, or given up by its caller)."""
        self._in_flight -= 1
        if self._in_flight <= self._resume_at:
            self._room.set()

    async def _send(self, pending: _Pending) -> None:
        self._counter += 1
        pending.token = f"{self._prefix}.{self._counter}"
        pending.attempts += 1
        pending.deadline = asyncio.get_running_loop().time() + self._ack_timeout
        self._pending[pending.token] = pending
        try:
            if self._raw:
                await self._send_frame(pending)
            else:
                await self._nc.publish(
                    pending.subject,
                    pending.data,
                    reply=pending.token,
                    headers=headers(pending.event),
                )
        except Exception as exc:  # connection closed or draining: retried by the sweep
            log.debug("publish.send_failed", error=str(exc), subject=pending.subject)

    async def _send_frame(self, pending: _Pending) -> None:
        """What nats-py's `publish` does, with the header block already encoded."""
        nc = self._nc
        if nc.is_closed or nc.is_draining_pubs:
            raise BusError("connection closed or draining")
        size = len(pending.data)
        if size > nc.max_payload:
            raise BusError(f"event of {size} bytes is over the server's maximum payload")
        header = pending.header
        frame = b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
            pending.subject.encode(),
            pending.token.encode(),
            len(header),
            len(header) + size,
            header,
            pending.data,
        )
        if not nc.is_connected:
            # While reconnecting nats-py buffers up to its pending size, then refuses.
            limit = nc._max_pending_size
            if limit <= 0 or nc._pending_data_size + len(frame) > limit:
                raise BusError("not connected and the reconnect buffer is full")
        nc.stats["out_msgs"] += 1
        nc.stats["out_bytes"] += size
        await nc._send_command(frame)
        if nc._flush_queue is not None and nc._flush_queue.empty():
            await nc._flush_pending()

    async def _on_reply(self, msg: Any) -> None:
        pending = self._pending.pop(msg.subject, None)
        if pending is None:
            return  # a late ack for an attempt already retried: the retry's ack counts
        if pending.future.done():  # cancelled by its caller
            self._done(pending)
            self._check_idle()
            return
        status = (msg.headers or {}).get("Status")
        if status == "503":
            # No stream answered (not created yet, or JetStream still recovering after a
            # restart): try again shortly, without spending one of the event's retries, for
            # at most `no_stream_patience` seconds.
            pending.stalls += 1
            if pending.stalls * NO_RESPONDERS_RETRY_S > self._no_stream_patience:
                self._fail(pending, PublishTimeout(f"no stream takes {pending.subject}"))
                return
            pending.attempts -= 1
            pending.deadline = asyncio.get_running_loop().time() + NO_RESPONDERS_RETRY_S
            self._pending[pending.token] = pending
            return
        try:
            reply = json.loads(msg.data)
        except ValueError:
            self._fail(pending, BusError(f"unreadable ack for {pending.subject}"))
            return
        if "error" in reply:
            error = reply["error"]
            self._fail(pending, BusError(f"JetStream refused {pending.subject}: {error}"))
            return
        ack = Ack(reply["stream"], int(reply["seq"]), bool(reply.get("duplicate", False)))
        self.stats.published += 1
        if ack.duplicate:
            self.stats.duplicates += 1
        pending.future.set_result(ack)
        self._done(pending)
        self._check_idle()

    def _fail(self, pending: _Pending, exc: Exception) -> None:
        self.stats.failed += 1
        if not pending.future.done():
            pending.future.set_exception(exc)
        self._done(pending)
        self._check_idle()

    def _check_idle(self) -> None:
        if not self._pending:
            self._idle.set()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.1)
            now = loop.time()
            overdue = [p for p in self._pending.values() if p.deadline <= now]
            for pending in overdue:
                self._pending.pop(pending.token, None)
                if pending.future.done():  # cancelled by its caller
                    self._done(pending)
                    continue
                if pending.attempts > self._retries:
                    self._fail(
                        pending,
                        PublishTimeout(
                            f"no ack for {pending.subject} after {pending.attempts} attempts"
                        ),
                    )
                    continue
                self.stats.retries += 1
                log.warning("publish.retry", subject=pending.subject, attempt=pending.attempts)
                await self._send(pending)
            self._check_idle()
