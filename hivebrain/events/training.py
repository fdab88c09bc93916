"""Training events: datasets exported from the learning queue and LoRA adapters."""

from __future__ import annotations

from pydantic import Field

from .envelope import Payload
from .registry import event_type


@event_type
class DatasetExported(Payload):
    TYPE = "training.dataset_exported"

    train_count: int = Field(ge=0)
    validation_count: int = Field(ge=0)
    content_hash: str = Field(min_length=1)
    object_name: str = Field(min_length=1)
    redacted: int = Field(default=0, ge=0)


@event_type
class AdapterTrained(Payload):
    TYPE = "training.adapter_trained"

    base_model: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    object_name: str = Field(min_length=1)
    metrics: dict[str, float] = Field(default_factory=dict)


@event_type
class AdapterPromoted(Payload):
    TYPE = "training.adapter_promoted"

    adapter: str = Field(min_length=1)
    reason: str = ""
