"""A node's entry in the device registry: announced once on start, only when it changed.

`DeviceAnnouncer` compares what this machine is (detected hardware + the configured profile)
with what the projection holds for the node, and publishes

- `device.registered` when the node is unknown (or a field must be cleared, e.g. a GPU that
  is gone: `device.updated` cannot say "now None"),
- `device.updated` with only the changed fields when something changed,
- nothing when nothing changed, so restarting a node publishes nothing.

`DeviceServices` is what a node runs for devices: the announcer (once the projection has caught
up with the node's own events), the heartbeat and the liveness tracker (see liveness.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from hivebrain.background import cancel_and_wait
from hivebrain.events import LamportClock, Payload
from hivebrain.events.device import DeviceRegistered, DeviceUpdated, Tier
from hivebrain.events.subjects import EVENTS_STREAM
from hivebrain.node.hardware import Hardware, capabilities, classify, detect
from hivebrain.node.liveness import DEFAULT_INTERVAL_S, Heartbeat, LivenessTracker
from hivebrain.projections.device_queries import PROFILE_FIELDS, DeviceRecord
from hivebrain.projections.store import ProjectionStore
from hivebrain.transport.bus import Bus
from hivebrain.transport.event_writer import EventWriter, Publish
from hivebrain.transport.publisher import Publisher

log = structlog.get_logger(__name__)

CATCH_UP_TIMEOUT_S = 30.0


class DeviceSource(Protocol):
    """Reads the projection's record of a device (e.g. `ProjectionStore`)."""

    def device(self, name: str) -> DeviceRecord | None: ...


class ProjectionProgress(Protocol):
    """Waits for the projection to apply a stream up to a sequence (e.g. `Projector`)."""

    async def wait_for(self, stream: str, seq: int, timeout: float = ...) -> bool: ...


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What the configuration says about a node (nodes.toml); the rest is detected."""

    name: str
    tier: Tier | None = None  # None: classified from the hardware
    capabilities: tuple[str, ...] = ()  # merged with those the hardware implies
    specialization: str = ""
    location: str = ""
    models: tuple[str, ...] = ()


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i.strip() for i in items if i.strip()))


def describe(profile: DeviceProfile, hw: Hardware) -> DeviceRegistered:
    """The full registration of a node: its profile over its detected hardware."""
    return DeviceRegistered(
        name=profile.name,
        tier=profile.tier or classify(hw),
        arch=hw.arch,
        cores=hw.cores,
        ram_mb=hw.ram_mb,
        gpu=hw.gpu,
        capabilities=capabilities(hw, profile.capabilities),
        specialization=profile.specialization,
        location=profile.location,
        models=_unique(profile.models),
    )


def changed_fields(current: DeviceRecord, wanted: DeviceRegistered) -> dict[str, Any]:
    """The profile fields whose wanted value differs from the recorded one."""
    out: dict[str, Any] = {}
    for name in PROFILE_FIELDS:
        value = getattr(wanted, name)
        if getattr(current, name) != value:
            out[name] = value
    return out


def announcement(current: DeviceRecord | None, wanted: DeviceRegistered) -> Payload | None:
    """What to publish so the registry says `wanted`: a registration, an update of the changed
    fields, or None."""
    if current is None or not current.registered:
        return wanted
    changed = changed_fields(current, wanted)
    if not changed:
        return None
    if any(value is None for value in changed.values()):  # an update cannot clear a field
        return wanted
    return DeviceUpdated(**changed)


class DeviceAnnouncer:
    def __init__(
        self,
        profile: DeviceProfile,
        source: DeviceSource,
        publish: Publish,
        *,
        hardware: Callable[[], Hardware] = detect,
    ) -> None:
        self.profile = profile
        self._source = source
        self._publish = publish
        self._hardware = hardware

    async def plan(self) -> Payload | None:
        """What `announce` would publish now."""
        hw = await asyncio.to_thread(self._hardware)  # may run nvidia-smi
        return announcement(self._source.device(self.profile.name), describe(self.profile, hw))

    async def announce(self) -> Payload | None:
        """Publish the registration or update this node needs; return it (None: unchanged)."""
        payload = await self.plan()
        if payload is not None:
            await self._publish(payload, entity=self.profile.name)
            log.info("device.announced", node=self.profile.name, type=payload.TYPE)
        return payload


class DeviceServices:
    """Device registry duties of one node: announce itself, heartbeat, track liveness.

    `start` returns at once; with a `profile`, the announcement runs in the background once
    the projection has applied the node's own events (`announced` is that task). Without one,
    the node only heartbeats and tracks. Failures are logged, never raised into the node.
    """

    def __init__(
        self,
        *,
        node: str,
        bus: Bus,
        clock: LamportClock,
        db_path: Path | str,
        profile: DeviceProfile | None = None,
        heartbeat_interval: float = DEFAULT_INTERVAL_S,
        hardware: Callable[[], Hardware] = detect,
    ) -> None:
        if profile is not None and profile.name != node:
            raise ValueError(f"profile {profile.name!r} is not node {node!r}")
        self.node = node
        self.profile = profile
        self._bus = bus
        self._clock = clock
        self._db_path = db_path
        self._hardware = hardware
        self.heartbeat = Heartbeat(bus.nc, node, heartbeat_interval)
        self.tracker = LivenessTracker(bus.nc, db_path)
        self.announced: asyncio.Task[Payload | None] | None = None
        self._publisher: Publisher | None = None
        self._store: ProjectionStore | None = None

    async def start(self, projection: ProjectionProgress) -> None:
        await self.tracker.start()
        await self.heartbeat.start()
        if self.profile is None:
            return
        self._publisher = await self._bus.publisher()
        self._store = ProjectionStore(self._db_path)  # its own connection, for reads
        writer = EventWriter(self.node, self._clock, self._publisher)
        announcer = DeviceAnnouncer(self.profile, self._store, writer, hardware=self._hardware)
        self.announced = asyncio.create_task(
            self._announce(announcer, projection), name="device-announce"
        )

    async def _announce(
        self, announcer: DeviceAnnouncer, projection: ProjectionProgress
    ) -> Payload | None:
        try:
            last = await self._bus.last_seq(EVENTS_STREAM)
            if not await projection.wait_for(EVENTS_STREAM, last, timeout=CATCH_UP_TIMEOUT_S):
                log.warning("device.announce_before_catch_up", node=self.node)
            return await announcer.announce()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("device.announce_failed", node=self.node, error=str(exc))
            return None

    async def stop(self) -> None:
        if self.announced is not None and not self.announced.done():
            await cancel_and_wait(self.announced)
        await self.heartbeat.stop()
        await self.tracker.stop()
        if self._publisher is not None:
            await self._publisher.close()
            self._publisher = None
        if self._store is not None:
            self._store.close()
            self._store = None


def device_row(record: DeviceRecord) -> dict[str, Any]:
    """A record as plain JSON-ready data."""
    return {
        "name": record.name,
        **{name: _plain(getattr(record, name)) for name in PROFILE_FIELDS},
        "status": record.status,
        "status_reason": record.status_reason,
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
