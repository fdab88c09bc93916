"""The JetStream adapter: connect, ensure the node's streams, read a stream from a position.

The streams themselves (EVENTS, HIVE; hub and leaf shapes) are laid out in `topology.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

import structlog
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from hivebrain.config import redact
from hivebrain.errors import BusError, NotConnected
from hivebrain.events.subjects import H_MSG_ID
from hivebrain.transport.client import HiveClient
from hivebrain.transport.publisher import Publisher
from hivebrain.transport.topology import Streams

log = structlog.get_logger(__name__)


class RawMessage(NamedTuple):
    """One stored message as read from a stream (a tuple: one is made per message read)."""

    stream: str
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]

    @property
    def msg_id(self) -> str | None:
        return self.headers.get(H_MSG_ID)


Handler = Callable[[RawMessage], Awaitable[None]]
T = TypeVar("T")

# A JetStream delivery's reply subject carries the message's stream sequence:
# "$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>", or,
# with a domain and account hash after "$JS.ACK.", the same fields two tokens further on.
_V1_TOKENS = 9
_V1_SEQ = 5
_V2_SEQ = 7
CONSUME_HEARTBEAT_S = 1.0  # see `Bus.consume`


def stream_seq(reply: str) -> int:
    """The stream sequence of a message delivered by a JetStream consumer."""
    tokens = reply.split(".")
    if len(tokens) < _V1_TOKENS or tokens[0] != "$JS" or tokens[1] != "ACK":
        raise BusError(f"not a JetStream delivery: {reply!r}")
    return int(tokens[_V1_SEQ if len(tokens) == _V1_TOKENS else _V2_SEQ])


async def connect(
    url: str,
    *,
    name: str = "hivebrain",
    timeout: float = 5.0,
    user: str | None = None,
    password: str | None = None,
    inbox_prefix: str = "_INBOX",
) -> Bus:
    """Connect to a NATS server; NotConnected with one clear line when nobody answers."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    options: dict[str, Any] = {
        "name": name,
        "connect_timeout": timeout,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "error_cb": on_error,
        "pending_size": 64 * 1024 * 1024,
        "user": user,
        "password": password,
        "inbox_prefix": inbox_prefix,
    }
    nc = HiveClient()
    try:
        # nats-py retries the first connect as often as reconnects (forever here): bound it.
        await asyncio.wait_for(nc.connect(url, **options), timeout)
    except TimeoutError:
        raise NotConnected(
            f"cannot reach NATS at {redact(url)} (no answer in {timeout:g}s)"
        ) from None
    except Exception as exc:  # nats-py raises several types for "nobody there"
        reason = redact(str(exc)) if url in str(exc) else str(exc) or type(exc).__name__
        raise NotConnected(f"cannot reach NATS at {redact(url)}: {reason}") from None
    return Bus(nc)


class Bus:
    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=10.0)
        self.streams = Streams(nc, self.js)

    async def close(self) -> None:
        """Drain, or close outright when the server is gone (drain would wait for it)."""
        try:
            await asyncio.wait_for(self.nc.drain(), 5.0)
        except Exception:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def publisher(self, **options: Any) -> Publisher:
        publisher = Publisher(self.nc, **options)
        await publisher.start()
        return publisher

    async def ensure_streams(self, node: str, *, timeout: float = 15.0) -> None:
        """EVENTS and HIVE for a single node: a hub with no leaves (idempotent)."""
        await self.retry(lambda: self.streams.ensure_hub(node), timeout)

    async def retry(self, action: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
        """Run a JetStream admin action, retrying while JetStream is still starting up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                return await action()
            except Exception as exc:
                if loop.time() > deadline:
                    raise BusError(f"JetStream is not answering: {exc}") from None
                await asyncio.sleep(0.2)

    async def last_seq(self, stream: str) -> int:
        try:
            info = await self.js.stream_info(stream)
        except NotFoundError:
            raise BusError(f"stream {stream} does not exist (has a node started here?)") from None
        except Exception as exc:
            raise BusError(f"cannot read stream {stream}: {exc}") from None
        return int(info.state.last_seq)

    async def consume(self, stream: str, start_seq: int, handler: Handler) -> Any:
        """Deliver every message of `stream` from `start_seq` on, in order, to `handler`.

        An ordered consumer: ephemeral, flow-controlled, and reset by nats-py on any gap, so
        the caller's stored position is the only state. Returns the subscription.

        It lives in the server's memory: a restarted server (or a recreated mirror) has lost
        it, and nats-py recreates it after two idle heartbeats without a message, so the
        heartbeat is 1 s (nats-py's 5 s default left reads stalled 10-20 s after a restart).
        """

        async def on_msg(msg: Any) -> None:
            # The sequence straight from the reply subject: `msg.metadata` builds four objects
            # and a datetime per message, none of which is needed here.
            seq = stream_seq(msg.reply)
            await handler(RawMessage(stream, seq, msg.subject, msg.data, msg.headers or {}))

        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, start_seq),
            idle_heartbeat=CONSUME_HEARTBEAT_S,
        )
        try:
            return await self.js.subscribe(
                "hive.>", stream=stream, ordered_consumer=True, config=config, cb=on_msg
            )
        except Exception as exc:
            raise BusError(f"cannot read stream {stream}: {exc}") from None
