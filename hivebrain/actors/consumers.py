"""The durable JetStream consumer of each actor: its name and its config, one per node or one
shared by the nodes whose actors split the work."""

from __future__ import annotations

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from hivebrain.events.subjects import ROOT

from .actor import (
    Actor,
)

#: How many nodes' batches a shared consumer keeps in flight at once, at most.
SHARERS = 8


def consumer_name(actor: Actor, node: str) -> str:
    """`actor-<name>-<node>`, or `actor-<name>-<key>` for a consumer shared by nodes."""
    return f"actor-{actor.name}-{actor.shared_key() or node}"


def consumer_config(actor: Actor, node: str, ack_wait: float) -> ConsumerConfig:
    """The durable consumer of `actor` on `node`: its families' subjects, explicit acks, at
    most one full batch per concurrent pull awaiting its ack."""
    subjects = [f"{ROOT}.*.{family}.>" for family in actor.families()]
    shared = actor.shared_key() is not None
    name = consumer_name(actor, node)
    return ConsumerConfig(
        name=name,
        durable_name=name,
        description=f"hivebrain actor {actor.name}",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        # A shared consumer serves the batches of several nodes at once.
        max_ack_pending=actor.batch_size * actor.concurrency * (SHARERS if shared else 1),
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=subjects if len(subjects) > 1 else None,
    )
