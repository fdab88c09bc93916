"""Interaction events: the learning queue (secrets are redacted before these are written)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .envelope import Payload
from .registry import event_type

Outcome = Literal["unknown", "success", "failure", "corrected"]


@event_type
class InteractionLogged(Payload):
    TYPE = "interaction.logged"

    query: str
    response: str = ""
    tool: str = ""
    outcome: Outcome = "unknown"
    feedback: str = ""
    latency_ms: float = Field(default=0.0, ge=0.0)
    agent: str = "default"
    session: str | None = None
