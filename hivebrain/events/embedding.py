"""Embedding events: vectors travel in the log, so a rebuild never re-embeds."""

from __future__ import annotations

import hashlib

from pydantic import Field, model_validator

from .envelope import Payload
from .registry import event_type


def content_hash(text: str) -> str:
    """The `content_hash` of a text: sha256 (hex) of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@event_type
class EmbeddingComputed(Payload):
    """The vector of an entity's text (entity = the embedded entity's id).

    `vector` is little-endian float32, `dim * 4` bytes.
    """

    TYPE = "embedding.computed"

    model: str = Field(min_length=1)
    dim: int = Field(ge=1, le=65536)
    vector: bytes
    content_hash: str = Field(min_length=1)

    @model_validator(mode="after")
    def _size(self) -> EmbeddingComputed:
        if len(self.vector) != self.dim * 4:
            raise ValueError(f"vector has {len(self.vector)} bytes, expected {self.dim * 4}")
        return self
