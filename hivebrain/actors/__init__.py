"""Per-node actors that consume events and publish new ones (see docs/design.md section 5)."""

from hivebrain.transport.event_writer import Publish

from .actor import Actor, ActorSetup, Clock, Context, ProjectionReader, SystemClock
from .consolidator import ConsolidatorActor
from .consumers import consumer_config, consumer_name
from .embedder import EmbedderActor
from .registry import ACTORS, actors_for, register
from .runtime import ActorRuntime
from .statsdb import ActorStats, read_stats
from .supervisor import Options

__all__ = [
    "ACTORS",
    "Actor",
    "ActorRuntime",
    "ActorSetup",
    "ActorStats",
    "Clock",
    "ConsolidatorActor",
    "Context",
    "EmbedderActor",
    "Options",
    "ProjectionReader",
    "Publish",
    "SystemClock",
    "actors_for",
    "consumer_config",
    "consumer_name",
    "read_stats",
    "register",
]
