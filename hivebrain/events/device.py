"""Device events: what each node of the homelab is and can do. Liveness is not an event."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .envelope import Payload
from .registry import event_type

Tier = Literal["micro", "edge", "standard", "gpu", "server"]
Status = Literal["online", "offline", "maintenance", "retired"]


@event_type
class DeviceRegistered(Payload):
    """A node's hardware and role (entity = node name); also sent when something changed."""

    TYPE = "device.registered"

    name: str = Field(min_length=1)
    tier: Tier = "standard"
    arch: str = ""
    cores: int = Field(default=0, ge=0)
    ram_mb: int = Field(default=0, ge=0)
    gpu: str | None = None
    capabilities: tuple[str, ...] = ()
    specialization: str = ""
    location: str = ""
    models: tuple[str, ...] = ()


@event_type
class DeviceUpdated(Payload):
    """Only the fields that changed (None = unchanged)."""

    TYPE = "device.updated"

    tier: Tier | None = None
    arch: str | None = None
    cores: int | None = Field(default=None, ge=0)
    ram_mb: int | None = Field(default=None, ge=0)
    gpu: str | None = None
    capabilities: tuple[str, ...] | None = None
    specialization: str | None = None
    location: str | None = None
    models: tuple[str, ...] | None = None


@event_type
class DeviceStatusChanged(Payload):
    TYPE = "device.status_changed"

    status: Status
    reason: str = ""
