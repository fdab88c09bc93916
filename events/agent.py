"""Agent events: AI instances with a persistent identity (entity = agent uuid)."""

from __future__ import annotations

from pydantic import Field

from .envelope import Payload
from .registry import event_type


@event_type
class AgentCreated(Payload):
    TYPE = "agent.created"

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
