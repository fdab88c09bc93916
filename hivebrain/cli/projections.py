"""`hivebrain projections`: the digest of the local projection, and its rebuild."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from hivebrain.app.connection import reach_nats
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM
from hivebrain.node.lock import NodeLock
from hivebrain.node.rebuild import rebuild as rebuild_projection
from hivebrain.projections.store import ProjectionStore


@click.group()
def projections() -> None:
    """The local SQLite projection of the event log."""


@projections.command()
@pass_settings
def digest(settings: Settings) -> None:
    """A canonical hash of the projection: equal on nodes that saw the same events."""
    store = ProjectionStore(settings.db_path)
    try:
        value = store.digest()
    finally:
        store.close()
    emit(settings, {"node": settings.node, "digest": value}, value)


@projections.command()
@pass_settings
def rebuild(settings: Settings) -> None:
    """Drop the projection and replay every event from sequence 1 (the node must be stopped).

    HIVE is read in full, then only the part of EVENTS that HIVE has not sourced yet."""

    async def go() -> dict[str, Any]:
        lock = NodeLock(settings.lock_file)
        lock.acquire()
        try:
            async with reach_nats(settings, holding_lock=True) as bus:
                store = ProjectionStore(settings.db_path, max_clock_jump=settings.max_clock_jump)
                try:
                    total = sum([await bus.last_seq(s) for s in (EVENTS_STREAM, HIVE_STREAM)])
                    started = time.perf_counter()
                    with click.progressbar(length=total, label="replaying", file=sys.stderr) as bar:

                        def advance(n: int) -> None:
                            bar.update(n)

                        totals = await rebuild_projection(bus, store, settings.node, advance)
                    seconds = time.perf_counter() - started
                    return {
                        "messages": totals.applied + totals.duplicates + totals.dead,
                        "stream_total": total,
                        "applied": totals.applied,
                        "duplicates": totals.duplicates,
                        "dead_letters": totals.dead,
                        "seconds": round(seconds, 3),
                        "events_per_s": round(totals.applied / seconds) if seconds else 0,
                        "digest": store.digest(),
                    }
                finally:
                    store.close()
        finally:
            lock.release()

    result = run(go())
    emit(
        settings,
        result,
        lambda r: (
            f"replayed {r['messages']} messages in {r['seconds']}s: {r['applied']} events applied "
            f"({r['events_per_s']}/s), {r['duplicates']} duplicates skipped, "
            f"{r['dead_letters']} dead letters\n"
            f"digest {r['digest']}"
        ),
    )
