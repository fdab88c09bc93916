"""Observation events: aggregates of sensor readings and what a model wrote about them."""

from __future__ import annotations

from pydantic import Field, model_validator

from .envelope import Payload
from .registry import event_type


@event_type
class ReadingsAggregated(Payload):
    """A window of raw readings from one source, summarised (entity = aggregate id)."""

    TYPE = "observation.readings_aggregated"

    source: str = Field(min_length=1)
    window_start: float
    window_end: float
    count: int = Field(ge=1)
    min: float
    max: float
    mean: float
    unit: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> ReadingsAggregated:
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        if not self.min <= self.mean <= self.max:
            raise ValueError("mean must lie between min and max")
        return self


@event_type
class ObservationWritten(Payload):
    """A sentence about the environment (entity = observation id)."""

    TYPE = "observation.written"

    text: str = Field(min_length=1)
    kind: str = "general"
    readings: tuple[str, ...] = ()
    model: str = ""
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
