"""Replaying the streams into an empty projection, and mending a clock that a far-ahead stamp
pushed towards its end.

`rebuild` is what `hivebrain projections rebuild` runs. `recover_clock` runs when a node
starts: a stamp far above the rest (applied before such stamps were refused, see
`BatchApplier`) left the node's clock so high that it soon could write nothing more. It lowers
the clock back to the stamps below the jump and rebuilds the projection, whose replay then
dead-letters the far-ahead events like any others: they stay in the streams, listed by
`hivebrain dead-letters`.
"""

from __future__ import annotations

import contextlib

import structlog

from hivebrain.events.subjects import EVENTS_STREAM, H_LAMPORT
from hivebrain.node.projector import Progress, Projector
from hivebrain.projections.batches import BatchResult
from hivebrain.projections.clock_store import clock_after_jump, lower_clock, read_high
from hivebrain.projections.store import ProjectionStore
from hivebrain.transport.bus import Bus

log = structlog.get_logger(__name__)


async def rebuild(
    bus: Bus,
    store: ProjectionStore,
    node: str,
    progress: Progress | None = None,
    *,
    separate_process: bool = True,
) -> BatchResult:
    """Drop the projection and replay HIVE and EVENTS into it; return the totals."""
    store.reset()
    projector = Projector(
        bus,
        store,
        node=node,
        batch_size=5000,
        high_water=50_000,
        separate_process=separate_process,
    )
    try:
        await projector.replay(progress)
    finally:
        await projector.stop()  # ends a writer process before the caller lets the lock go
    return projector.totals


async def _own_last_lamport(bus: Bus) -> int:
    """The stamp of the last event this node wrote (EVENTS' last message), 0 if none."""
    last = await bus.last_seq(EVENTS_STREAM)
    if not last:
        return 0
    with contextlib.suppress(Exception):
        msg = await bus.js.get_msg(EVENTS_STREAM, last)
        value = (msg.headers or {}).get(H_LAMPORT, "")
        return int(value) if value.isdigit() else 0
    return 0


async def recover_clock(bus: Bus, store: ProjectionStore, node: str) -> bool:
    """Lower a clock pushed far above the stamps (more than twice `max_clock_jump` over the
    ones below the jump) and rebuild the projection; False when the clock is sound (the
    usual case, decided without reading the stamps unless the clock is that high at all)."""
    conn = store.connection
    jump = store.max_clock_jump
    if read_high(conn) <= 2 * jump:
        return False
    sound = clock_after_jump(conn, 2 * jump)
    if sound is None:
        return False
    own = await _own_last_lamport(bus)
    if own <= sound + 2 * jump:
        sound = max(sound, own)
    log.warning("clock.recovering", node=node, clock=read_high(conn), lowered_to=sound)
    lower_clock(conn, sound)
    totals = await rebuild(bus, store, node, separate_process=False)
    log.warning(
        "clock.recovered",
        node=node,
        clock=read_high(conn),
        applied=totals.applied,
        dead_letters=totals.dead,
    )
    return True
