"""Agent events: AI instances with a persistent identity (entity = agent uuid).

`agent.created` is the agent's whole record: publishing it again for the same uuid replaces
the record (last writer wins), which is how an agent's working-memory policy is changed. The
policy fields say when the agent's `working` memories are consolidated (see
`hivebrain.app.consolidation`); None means the built-in default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .envelope import Payload
from .registry import event_type

#: Where consolidation moves working memories.
ConsolidationTarget = Literal["long_term", "archive"]
CONSOLIDATION_TARGETS: tuple[ConsolidationTarget, ...] = ("long_term", "archive")


@event_type
class AgentCreated(Payload):
    TYPE = "agent.created"

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    working_max_age: float | None = Field(default=None, gt=0.0)  # seconds
    working_max_count: int | None = Field(default=None, ge=0)
    consolidate_to: ConsolidationTarget | None = None
