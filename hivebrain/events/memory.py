"""Memory events: what an AI remembers, in which agent's space, and how it changes.

A memory is either a plain `text` or a conversation turn (`user_message` + `response`, with
its `session`). Spaces follow the AI Memory Management seed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .envelope import Payload, VersionRef
from .registry import event_type, upcaster

Space = Literal["working", "long_term", "personal_logs", "archive"]
SPACES: tuple[Space, ...] = ("working", "long_term", "personal_logs", "archive")
#: The agent of a memory stored without one; reads without an agent see this agent's memories.
DEFAULT_AGENT = "default"

Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s,]+$")]


@event_type
class MemoryStored(Payload):
    TYPE = "memory.stored"
    VERSION = 2

    text: str | None = Field(default=None, min_length=1)
    user_message: str | None = None
    response: str | None = None
    session: str | None = None
    agent: str = Field(default=DEFAULT_AGENT, min_length=1, max_length=128)
    space: Space = "long_term"
    tags: tuple[Tag, ...] = ()
    source: str = ""
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    shared: bool = False

    @model_validator(mode="after")
    def _text_or_turn(self) -> MemoryStored:
        if self.text is None and not (self.user_message and self.response):
            raise ValueError("a memory needs text, or both user_message and response")
        if not self.content().strip():
            raise ValueError("a memory's text cannot be blank")
        return self

    def content(self) -> str:
        """The searchable text of the memory."""
        if self.text is not None:
            return self.text
        return f"{self.user_message}\n{self.response}"


@event_type
class MemoryEdited(Payload):
    """New text for a memory, made on top of the version stamped `base`.

    Two edits with the same base are a conflict (see projections). `untag` removes tags with
    add-wins semantics: it names the tag-adding events it has seen, so an add it has not seen
    survives.
    """

    TYPE = "memory.edited"

    base: VersionRef
    text: str | None = Field(default=None, min_length=1)
    tag: tuple[Tag, ...] = ()
    untag: tuple[TagRemoval, ...] = ()


class TagRemoval(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: Tag
    observed: tuple[str, ...]


@event_type
class MemoryMoved(Payload):
    TYPE = "memory.moved"

    space: Space
    from_space: Space | None = None
    reason: str = ""


@event_type
class MemoryForgotten(Payload):
    """A tombstone: final, unless a later explicit `memory.restored`."""

    TYPE = "memory.forgotten"

    reason: str = ""


@event_type
class MemoryRestored(Payload):
    TYPE = "memory.restored"

    reason: str = ""


@event_type
class MemoryReinforced(Payload):
    TYPE = "memory.reinforced"

    amount: float = Field(default=1.0, gt=0.0, le=1000.0)


@event_type
class MemoryDecayed(Payload):
    TYPE = "memory.decayed"

    amount: float = Field(default=1.0, gt=0.0, le=1000.0)


@event_type
class MemoryErased(Payload):
    """Erase a memory everywhere: every node deletes its events from its streams and its rows
    from its projection, and confirms with `memory.erase_confirmed`. It carries no text: only
    the memory's id (the entity), the sha256 of the text it had, and the ids of the
    interactions that held the text (erased with it)."""

    TYPE = "memory.erased"

    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    interactions: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9_:-]{1,128}$")], ...] = ()


@event_type
class MemoryEraseConfirmed(Payload):
    """A node's receipt: it deleted the erased memory's messages from its EVENTS and HIVE
    (`messages` of them) and its rows; the author of this event is the confirming node."""

    TYPE = "memory.erase_confirmed"

    messages: int = Field(default=0, ge=0)


MemoryEdited.model_rebuild()


@upcaster("memory.stored", 1)
def _stored_v1_to_v2(old: dict[str, Any]) -> dict[str, Any]:
    """v1 (the Firestore-era shape) said `content` and `memory_type` ("long_term_memory")."""
    new = {k: v for k, v in old.items() if k not in ("content", "memory_type", "metadata")}
    new["text"] = old.get("content")
    memory_type = str(old.get("memory_type", "long_term_memory"))
    new["space"] = memory_type.removesuffix("_memory")
    return new
