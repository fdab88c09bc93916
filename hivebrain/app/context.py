"""Session context and the tool-output cache: JetStream key-value buckets whose entries expire.

Why and how: docs/design.md section 10, `hivebrain/app/context.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from nats.js.api import KeyValueConfig
from nats.js.errors import BadRequestError, KeyDeletedError, KeyNotFoundError, NotFoundError

from hivebrain.durations import parse_duration
from hivebrain.errors import BusError, ConfigError
from hivebrain.transport.bus import Bus
from hivebrain.transport.topology import CACHE_BUCKET, CONTEXT_BUCKET

log = structlog.get_logger(__name__)

DEFAULT_CONTEXT_TTL_S = 7 * 24 * 3600
DEFAULT_CACHE_TTL_S = 3600
MAX_NAME = 256  # characters of a session id, key or tool name
MAX_VALUE_BYTES = 512 * 1024
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_ESCAPED = re.compile(r"=([0-9A-F]{2})")
_PURGE = {"KV-Operation": "PURGE", "Nats-Rollup": "sub"}


def parse_ttl(text: str | int) -> int:
    """Whole seconds of a TTL given as seconds or a duration (`90s`, `15m`, `1h`, `7d`, `2w`)."""
    seconds = parse_duration(text, what="TTL", at_least=1)
    if seconds != int(seconds):
        raise ConfigError(f"bad TTL {text!r}: a whole number of seconds")
    return int(seconds)


@dataclass(frozen=True, slots=True)
class ContextSettings:
    """TTLs of the two buckets (read once at the entry point)."""

    context_ttl: int = DEFAULT_CONTEXT_TTL_S
    cache_ttl: int = DEFAULT_CACHE_TTL_S


def escape(name: str, what: str = "name") -> str:
    """`name` as one key token (see the module docstring); ConfigError when empty or long."""
    if not name:
        raise ConfigError(f"the {what} cannot be empty")
    if len(name) > MAX_NAME:
        raise ConfigError(f"the {what} is longer than {MAX_NAME} characters")
    return "".join(chr(b) if b in _PLAIN else f"={b:02X}" for b in name.encode())


def unescape(token: str) -> str:
    """The name `escape` made `token` from."""
    out = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "=" and _ESCAPED.match(token, i):
            out.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(token[i]))
            i += 1
    return out.decode("utf-8", errors="replace")


def arguments_hash(arguments: Any) -> str:
    """sha256 of the canonical JSON of a tool's arguments (sorted keys, no spaces)."""
    try:
        canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tool arguments are not JSON: {exc}") from None
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: Any
    node: str
    at: float  # unix time it was written
    ttl: int  # seconds

    @property
    def expires_at(self) -> float:
        return self.at + self.ttl

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": self.value,
            "node": self.node,
            "at": self.at,
            "ttl": self.ttl,
            "expires_at": self.expires_at,
        }


class _Bucket:
    """One key-value bucket with per-entry TTLs (the JetStream stream `KV_<bucket>`)."""

    def __init__(self, bus: Bus, bucket: str, node: str) -> None:
        self._js = bus.js
        self._bus = bus
        self.bucket = bucket
        self.stream = f"KV_{bucket}"
        self.node = node
        self._ceiling = 0.0
        self._direct = False  # read with direct gets (any replica answers) when allowed

    async def open(self, ttl: int) -> None:
        """Create the bucket, or raise its max age to `ttl` when it is lower."""

        async def create() -> None:
            try:
                config = KeyValueConfig(bucket=self.bucket, ttl=ttl, direct=True)
                await self._js.create_key_value(config)
                self._ceiling = float(ttl)
                self._direct = True
            except BadRequestError:  # it exists with another configuration
                await self._raise_ceiling(ttl)

        await self._bus.retry(create)

    async def _raise_ceiling(self, ttl: int) -> None:
        info = await self._js.stream_info(self.stream)
        config = info.config
        current = float(config.max_age or 0)
        if current and current < ttl:
            config.max_age = float(ttl)
            config.duplicate_window = min(float(config.duplicate_window or 120), float(ttl))
            await self._js.update_stream(config)
            log.info("kv.max_age_raised", bucket=self.bucket, seconds=ttl)
            current = float(ttl)
        if not config.allow_msg_ttl:
            raise BusError(f"bucket {self.bucket} does not allow per-entry TTLs")
        self._ceiling = current
        self._direct = bool(config.allow_direct)

    def subject(self, key: str) -> str:
        return f"$KV.{self.bucket}.{key}"

    async def put(self, key: str, value: Any, ttl: int) -> Entry:
        if self._ceiling and ttl > self._ceiling:
            await self._raise_ceiling(ttl)
        entry = Entry(key=key, value=value, node=self.node, at=time.time(), ttl=ttl)
        try:
            data = json.dumps(
                {"value": value, "node": self.node, "at": entry.at, "ttl": ttl},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the value is not JSON: {exc}") from None
        if len(data) > MAX_VALUE_BYTES:
            raise ConfigError(f"the value is larger than {MAX_VALUE_BYTES // 1024} KiB")
        try:
            await self._js.publish(self.subject(key), data, msg_ttl=ttl)
        except Exception as exc:
            raise BusError(f"cannot write to {self.bucket}: {exc}") from None
        return entry

    async def get(self, key: str, shown: str) -> Entry | None:
        """The live entry under `key` (shown to the caller as `shown`), None if absent."""
        try:
            msg = await self._js.get_last_msg(self.stream, self.subject(key), direct=self._direct)
        except (KeyNotFoundError, KeyDeletedError, NotFoundError):
            return None
        except Exception as exc:
            raise BusError(f"cannot read {self.bucket}: {exc}") from None
        headers = msg.headers or {}
        if headers.get("KV-Operation") in ("DEL", "PURGE") or not msg.data:
            return None
        entry = _decode(shown, msg.data, self.node)
        if entry is not None and entry.ttl and entry.expires_at <= time.time():
            return None  # past its TTL: the server removes it soon, it is gone already
        return entry

    async def keys(self, prefix: str) -> list[str]:
        """Keys (escaped, without the bucket's prefix) under `prefix.`, deleted ones included."""
        filter_subject = self.subject(f"{prefix}.>")
        try:
            info = await self._js.stream_info(self.stream, subjects_filter=filter_subject)
        except Exception as exc:
            raise BusError(f"cannot list {self.bucket}: {exc}") from None
        start = len(self.subject(""))
        return sorted(subject[start:] for subject in (info.state.subjects or {}))

    async def delete(self, keys: Iterable[str]) -> None:
        """Purge `keys`: each leaves a purge marker (the history says it was cleared)."""
        for key in keys:
            try:
                await self._js.publish(self.subject(key), b"", headers=_PURGE)
            except Exception as exc:
                raise BusError(f"cannot delete from {self.bucket}: {exc}") from None


def _decode(key: str, data: bytes, node: str) -> Entry | None:
    try:
        body = json.loads(data)
        return Entry(
            key=key,
            value=body["value"],
            node=str(body.get("node", node)),
            at=float(body.get("at", 0.0)),
            ttl=int(body.get("ttl", 0)),
        )
    except (ValueError, KeyError, TypeError):
        # written by someone else (e.g. `nats kv put`): the raw text is the value
        return Entry(key=key, value=data.decode(errors="replace"), node="", at=0.0, ttl=0)


class SessionContext:
    """Per-session context: small JSON values under string keys, each kept `ttl` seconds."""

    def __init__(self, bus: Bus, node: str, ttl: int = DEFAULT_CONTEXT_TTL_S) -> None:
        self._bucket = _Bucket(bus, CONTEXT_BUCKET, node)
        self.ttl = ttl

    async def open(self) -> SessionContext:
        await self._bucket.open(self.ttl)
        return self

    async def set(self, session: str, key: str, value: Any, ttl: int | None = None) -> Entry:
        token = f"{escape(session, 'session id')}.{escape(key, 'key')}"
        entry = await self._bucket.put(token, value, self.ttl if ttl is None else ttl)
        return Entry(key, entry.value, entry.node, entry.at, entry.ttl)

    async def get(self, session: str, key: str) -> Entry | None:
        token = f"{escape(session, 'session id')}.{escape(key, 'key')}"
        return await self._bucket.get(token, key)

    async def list(self, session: str) -> list[Entry]:
        """The session's live entries, by key."""
        prefix = escape(session, "session id")
        out = []
        for token in await self._bucket.keys(prefix):
            key = unescape(token.split(".", 1)[1])
            entry = await self._bucket.get(token, key)
            if entry is not None:
                out.append(entry)
        return sorted(out, key=lambda e: e.key)

    async def delete(self, session: str, key: str) -> bool:
        """Remove one key; False when it was not there."""
        if await self.get(session, key) is None:
            return False
        token = f"{escape(session, 'session id')}.{escape(key, 'key')}"
        await self._bucket.delete([token])
        return True

    async def clear(self, session: str) -> int:
        """Remove every key of the session; how many live keys there were."""
        entries = await self.list(session)
        prefix = escape(session, "session id")
        await self._bucket.delete(f"{prefix}.{escape(e.key, 'key')}" for e in entries)
        return len(entries)


class ToolCache:
    """Outputs of tools keyed by tool name and a hash of their arguments, kept `ttl` seconds."""

    def __init__(self, bus: Bus, node: str, ttl: int = DEFAULT_CACHE_TTL_S) -> None:
        self._bucket = _Bucket(bus, CACHE_BUCKET, node)
        self.ttl = ttl

    async def open(self) -> ToolCache:
        await self._bucket.open(self.ttl)
        return self

    @staticmethod
    def key(tool: str, arguments: Any) -> str:
        return f"{escape(tool, 'tool name')}.{arguments_hash(arguments)}"

    async def get(self, tool: str, arguments: Any) -> Entry | None:
        """The cached output of `tool` called with `arguments`, None on a miss."""
        return await self._bucket.get(self.key(tool, arguments), tool)

    async def put(self, tool: str, arguments: Any, output: Any, ttl: int | None = None) -> Entry:
        return await self._bucket.put(
            self.key(tool, arguments), output, self.ttl if ttl is None else ttl
        )


async def open_context(
    bus: Bus, node: str, settings: ContextSettings
) -> tuple[SessionContext, ToolCache]:
    """Both stores, their buckets created (or their ceilings raised) on the node's server."""
    context = await SessionContext(bus, node, settings.context_ttl).open()
    cache = await ToolCache(bus, node, settings.cache_ttl).open()
    return context, cache
