"""The streams of a hive (docs/design.md section 2) and the moves that keep replication quick.

- Every node: `EVENTS`, subjects `hive.<node>.>`, the events authored there.
- The hub: `HIVE` sources its own `EVENTS` and each leaf's `EVENTS` through the leaf's
  JetStream domain (`$JS.<leaf>.API`), each source filtered to `hive.<leaf>.>`: that filter,
  not the leaf's own server, is what stops a node from authoring under another node's name.
- A leaf: `HIVE` mirrors the hub's `HIVE` (`$JS.<hub>.API`), so HIVE sequences are the same on
  every node.

A source or mirror whose consumer-create request went out while the link was down (a server
restarted, a link that dropped) waits for that request's 30 s timeout and then a back-off of
10 s per failure before nats-server tries again, and no setting changes it
(docs/leaf-topology.md). `restart_source` (remove, then re-add one source) and `restart_mirror`
(recreate the mirror) make it resume at once, without loss or duplicates; `sources` and
`mirror_state` say which one is stalled (hivebrain/node/link.py decides when).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from nats.js.api import (
    DiscardPolicy,
    ExternalStream,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)
from nats.js.errors import NotFoundError

from hivebrain.errors import BusError
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM, node_subjects

log = structlog.get_logger(__name__)

#: Key-value buckets of each node's own server: session context and the tool cache.
CONTEXT_BUCKET = "hivebrain_context"
CACHE_BUCKET = "hivebrain_tool_cache"
KV_BUCKETS = (CONTEXT_BUCKET, CACHE_BUCKET)

DUPLICATE_WINDOW_S = 120.0


def events_config(node: str) -> StreamConfig:
    return StreamConfig(
        name=EVENTS_STREAM,
        subjects=[node_subjects(node)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=0,  # an event not yet sourced must never expire
        duplicate_window=DUPLICATE_WINDOW_S,
    )


def leaf_source(leaf: str) -> StreamSource:
    return StreamSource(
        name=EVENTS_STREAM,
        filter_subject=node_subjects(leaf),
        external=ExternalStream(api=f"$JS.{leaf}.API", deliver=f"$JS.S.{leaf}"),
    )


def hub_hive_config(hub: str, leaves: Iterable[str] = ()) -> StreamConfig:
    own = StreamSource(name=EVENTS_STREAM, filter_subject=node_subjects(hub))
    return StreamConfig(
        name=HIVE_STREAM,
        subjects=[],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=0,
        duplicate_window=DUPLICATE_WINDOW_S,
        sources=[own, *(leaf_source(leaf) for leaf in sorted(set(leaves)))],
    )


def leaf_hive_config(leaf: str, hub: str, description: str = "") -> StreamConfig:
    return StreamConfig(
        name=HIVE_STREAM,
        description=description or None,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=0,
        mirror=StreamSource(
            name=HIVE_STREAM,
            external=ExternalStream(api=f"$JS.{hub}.API", deliver=f"$JS.M.{leaf}"),
        ),
    )


def source_leaf(source: dict[str, Any]) -> str | None:
    """The leaf a HIVE source reads from (from its external API prefix), None for our own."""
    api = (source.get("external") or {}).get("api", "")
    parts = api.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "$JS" and parts[2] == "API" else None


@dataclass(frozen=True, slots=True)
class SourceState:
    leaf: str | None  # None: the hub's own EVENTS
    lag: int
    active_s: float | None  # seconds since the source last received anything; None if never


@dataclass(frozen=True, slots=True)
class MirrorState:
    last_seq: int  # of the leaf's HIVE
    lag: int
    active_s: float | None  # seconds since the mirror last received anything; None if never


class Streams:
    """Creates and adjusts one node's streams through its JetStream context."""

    def __init__(self, nc: Any, js: Any) -> None:
        self._nc = nc
        self._js = js

    async def _info(self, stream: str) -> dict[str, Any] | None:
        """The raw STREAM.INFO answer (nats-py's model drops the sources' `external`)."""
        msg = await self._nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5.0)
        reply: dict[str, Any] = json.loads(msg.data)
        if "error" in reply:
            if reply["error"].get("code") == 404:
                return None
            raise BusError(f"stream info {stream}: {reply['error'].get('description')}")
        return reply

    async def _put(self, config: StreamConfig, exists: bool) -> None:
        if exists:
            await self._js.update_stream(config)
        else:
            await self._js.add_stream(config)
            log.info("stream.created", stream=config.name)

    async def ensure_hub(self, hub: str, leaves: Iterable[str] = ()) -> list[str]:
        """EVENTS and HIVE of the hub; HIVE keeps every leaf it already sources and gains
        `leaves` (sources are only added here). Returns the leaves HIVE sources."""
        await self._put(events_config(hub), await self._info(EVENTS_STREAM) is not None)
        info = await self._info(HIVE_STREAM)
        known = set()
        if info is not None:
            sources = info["config"].get("sources") or []
            known = {leaf for leaf in map(source_leaf, sources) if leaf}
        wanted = known | set(leaves)
        if info is None or wanted != known:
            await self._put(hub_hive_config(hub, wanted), info is not None)
            if wanted != known:
                log.info("hive.sources", leaves=sorted(wanted))
        return sorted(wanted)

    async def ensure_leaf(self, leaf: str, hub: str) -> None:
        await self._put(events_config(leaf), await self._info(EVENTS_STREAM) is not None)
        info = await self._info(HIVE_STREAM)
        if info is None:
            await self._put(leaf_hive_config(leaf, hub), exists=False)
        elif not info["config"].get("mirror"):
            raise BusError(
                "this node's HIVE stream sources events (it ran as a hub); a leaf needs a "
                "mirror: delete its data directory's nats/ folder and start again"
            )

    async def sources(self) -> list[SourceState]:
        info = await self._info(HIVE_STREAM)
        if info is None:
            return []
        states = []
        for raw in info.get("sources") or []:
            active = raw.get("active", -1)
            states.append(
                SourceState(
                    leaf=source_leaf(raw),
                    lag=int(raw.get("lag", 0)),
                    active_s=None if active is None or active < 0 else active / 1e9,
                )
            )
        return states

    async def restart_source(self, hub: str, leaf: str) -> None:
        """Remove one leaf's source from HIVE and add it back: the server resumes it at once
        from where it stopped (instead of after its ~40 s retry back-off)."""
        info = await self._info(HIVE_STREAM)
        if info is None:
            return
        leaves = {x for x in map(source_leaf, info["config"].get("sources") or []) if x}
        if leaf in leaves:
            await self._js.update_stream(hub_hive_config(hub, leaves - {leaf}))
        # Always written back with the leaf: if an earlier restart failed half-way, this heals it.
        await self._js.update_stream(hub_hive_config(hub, leaves | {leaf}))
        log.info("hive.source_restarted", leaf=leaf)

    async def mirror_lag(self) -> tuple[int, float | None]:
        """(messages behind, seconds since the mirror last delivered) of a leaf's HIVE."""
        state = await self.mirror_state()
        return (state.lag, state.active_s) if state else (0, None)

    async def mirror_state(self) -> MirrorState | None:
        """A leaf's HIVE mirror: its last sequence and how it moves; None without a mirror."""
        info = await self._info(HIVE_STREAM)
        if info is None or not info.get("mirror"):
            return None
        mirror = info["mirror"]
        active = mirror.get("active", -1)
        return MirrorState(
            last_seq=int(info["state"]["last_seq"]),
            lag=int(mirror.get("lag", 0)),
            active_s=None if active is None or active < 0 else active / 1e9,
        )

    async def restart_mirror(self, leaf: str, hub: str) -> None:
        """Recreate a leaf's HIVE mirror: it copies the hub's HIVE again with the same sequence
        numbers (so stored positions stay valid) and resumes at once."""
        with contextlib.suppress(NotFoundError):
            await self._js.delete_stream(HIVE_STREAM)
        await self._js.add_stream(leaf_hive_config(leaf, hub))
        log.info("hive.mirror_restarted", leaf=leaf, hub=hub)

    async def last_seq(self, stream: str) -> int:
        info = await self._info(stream)
        return int(info["state"]["last_seq"]) if info else 0
