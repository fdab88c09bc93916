"""Events: the envelope, the codec, the Lamport clock and the type of every event family.

Importing this package registers every family's event types.
"""

from . import agent, device, embedding, interaction, knowledge, memory, observation, task, training
from .clock import ClockStore, LamportClock
from .codec import decode, encode, from_wire, to_wire
from .envelope import Event, Payload, Stamp, VersionRef, derived_id, new_id
from .registry import all_types, event_type, payload_class, upcaster

__all__ = [
    "ClockStore",
    "Event",
    "LamportClock",
    "Payload",
    "Stamp",
    "VersionRef",
    "agent",
    "all_types",
    "decode",
    "derived_id",
    "device",
    "embedding",
    "encode",
    "event_type",
    "from_wire",
    "interaction",
    "knowledge",
    "memory",
    "new_id",
    "observation",
    "payload_class",
    "task",
    "to_wire",
    "training",
    "upcaster",
]
