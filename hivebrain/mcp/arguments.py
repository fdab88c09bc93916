"""The MCP tools' arguments: pydantic models whose JSON schemas the server publishes, with the
limits every tool call is checked against."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from hivebrain.app.context import MAX_NAME
from hivebrain.events.memory import SPACES, Space

ALL_AGENTS = "*"


Agent = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description='The agent whose memories these are (a name or uuid); "default" if omitted.',
    ),
]


TagList = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s,]+$")]],
    Field(max_length=32, description="Tags: single words without spaces or commas."),
]


SessionId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_NAME, description="The conversation session's id."),
]


MemoryId = Annotated[
    str, Field(min_length=1, max_length=128, description="A memory id, as memory_recall gives.")
]


class Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecallArgs(Arguments):
    query: str = Field(min_length=1, max_length=2000, description="What to look for, in words.")
    limit: int = Field(10, ge=1, le=100, description="At most this many results.")
    mode: Literal["hybrid", "keyword", "vector"] = Field(
        "hybrid",
        description="hybrid: keywords and meaning fused (default); keyword: BM25 only; "
        "vector: meaning only. Without an embedder on the node, keywords answer.",
    )
    agent: str = Field(
        "default",
        min_length=1,
        max_length=128,
        description='Whose memories: an agent name or uuid (its own and shared ones), or "*" '
        "for every agent's.",
    )
    space: Space | None = Field(None, description="Only memories in this space.")
    tags: TagList = []
    session: SessionId | None = Field(None, description="The session, for the interaction log.")


class StoreArgs(Arguments):
    text: str = Field(min_length=1, max_length=20_000, description="What to remember.")
    agent: Agent = "default"
    space: Space = Field("long_term", description="Where it goes: " + ", ".join(SPACES) + ".")
    tags: TagList = []
    session: SessionId | None = Field(None, description="The conversation session it came from.")
    source: str = Field("mcp", max_length=200, description="Where the memory comes from.")
    confidence: float = Field(1.0, ge=0.0, le=1.0, description="How sure, from 0 to 1.")


class ContextArgs(Arguments):
    session: SessionId
    action: Literal["get", "set", "delete"] = Field(
        "get",
        description="get: one key, or every key when `key` is omitted; set: `key` = `value`; "
        "delete: remove `key`.",
    )
    key: str | None = Field(None, min_length=1, max_length=MAX_NAME, description="The key.")
    value: JsonValue = Field(None, description="For set: any JSON value.")
    ttl_seconds: int | None = Field(
        None, ge=1, le=365 * 86400, description="For set: keep it this long (default 7 days)."
    )


class CacheArgs(Arguments):
    action: Literal["get", "put"] = Field(
        "get", description="get: the cached output, if any; put: cache `output`."
    )
    tool: str = Field(
        min_length=1, max_length=MAX_NAME, description="The tool whose output is cached."
    )
    arguments: JsonValue = Field(
        None, description="The arguments the tool was called with (any JSON; part of the key)."
    )
    output: JsonValue = Field(None, description="For put: the tool's output (any JSON).")
    ttl_seconds: int | None = Field(
        None, ge=1, le=30 * 86400, description="For put: keep it this long (default 1 hour)."
    )


class ClearArgs(Arguments):
    confirm: bool = Field(
        False, description="Must be true: clearing cannot be undone by this server."
    )
    session: SessionId | None = Field(None, description="Clear this session's context.")
    agent: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Forget this agent's working-space memories (memory.forgotten events; "
        "their history stays in the log).",
    )


class MoveArgs(Arguments):
    id: MemoryId
    space: Space = Field(description="The space to move it to: " + ", ".join(SPACES) + ".")
    reason: str = Field("", max_length=500, description="Why (kept in the event).")


class ForgetArgs(Arguments):
    id: MemoryId
    reason: str = Field("", max_length=500, description="Why (kept in the event).")


class EraseArgs(Arguments):
    id: MemoryId
    confirm: bool = Field(
        False,
        description="Must be true: the memory's text is deleted on every node, not undoable.",
    )


class KnowledgeArgs(Arguments):
    query: str = Field(min_length=1, max_length=2000, description="What to look for, in words.")
    limit: int = Field(10, ge=1, le=100, description="At most this many chunks.")


class DevicesArgs(Arguments):
    online_only: bool = Field(False, description="Only devices whose heartbeat is recent.")
