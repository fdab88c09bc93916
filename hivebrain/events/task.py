"""Task events: work the router hands to the node best able to do it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .envelope import Payload
from .registry import event_type


@event_type
class TaskRequested(Payload):
    TYPE = "task.requested"

    kind: str = Field(min_length=1)
    prompt: str = ""
    requires: tuple[str, ...] = ()
    min_tier: str | None = None


@event_type
class TaskAssigned(Payload):
    TYPE = "task.assigned"

    assignee: str = Field(min_length=1)
    reason: str = ""


@event_type
class TaskCompleted(Payload):
    TYPE = "task.completed"

    status: Literal["done", "failed", "cancelled"] = "done"
    result: str = ""
