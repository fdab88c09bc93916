"""Knowledge events: documents ingested and the chunks they are split into."""

from __future__ import annotations

from pydantic import Field

from .envelope import Payload
from .registry import event_type


@event_type
class DocumentIngested(Payload):
    """A document (entity = document id) was read; its chunks follow as `knowledge.chunk_added`."""

    TYPE = "knowledge.document_ingested"

    source: str = Field(min_length=1)
    title: str = ""
    kind: str = "text"
    content_hash: str = Field(min_length=1)
    size: int = Field(ge=0)
    total_chunks: int = Field(ge=0)


@event_type
class ChunkAdded(Payload):
    """One chunk of a document (entity = chunk id)."""

    TYPE = "knowledge.chunk_added"

    document: str = Field(min_length=1)
    source: str = Field(min_length=1)
    chunk_index: int = Field(ge=0)
    total_chunks: int = Field(ge=1)
    text: str = Field(min_length=1)
    content_hash: str = Field(min_length=1)

    @property
    def position(self) -> str:
        return f"{self.chunk_index + 1}/{self.total_chunks}"


@event_type
class KnowledgeRemoved(Payload):
    """A document (entity = document id) and every chunk of it older than this event go away."""

    TYPE = "knowledge.removed"

    source: str = ""
    reason: str = ""
