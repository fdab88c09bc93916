"""Where events live on NATS: stream names, the subject scheme and the readable headers.

Subject: `hive.<node>.<family>.<entity>`. The headers let the `nats` CLI show what an event is
without decoding its msgpack body.
"""

from __future__ import annotations

from .codec import CONTENT_TYPE
from .envelope import Event

EVENTS_STREAM = "EVENTS"  # events authored on this node
HIVE_STREAM = "HIVE"  # everyone's events (sourced on the hub, mirrored on leaves)
ROOT = "hive"

H_MSG_ID = "Nats-Msg-Id"
H_TYPE = "Hive-Type"
H_NODE = "Hive-Node"
H_LAMPORT = "Hive-Lamport"
H_CONTENT_TYPE = "Content-Type"


def node_subjects(node: str) -> str:
    """The wildcard of every subject a node authors."""
    return f"{ROOT}.{node}.>"


def subject(event: Event) -> str:
    return f"{ROOT}.{event.node}.{event.family}.{event.entity}"


def headers(event: Event) -> dict[str, str]:
    return {
        H_MSG_ID: event.event_id,
        H_TYPE: event.type,
        H_NODE: event.node,
        H_LAMPORT: str(event.lamport),
        H_CONTENT_TYPE: CONTENT_TYPE,
    }
