"""`hivebrain stats`: stream positions, lag, counts, actors."""

from __future__ import annotations

from typing import Any

import click

from hivebrain.actors import read_stats
from hivebrain.app.connection import reach_nats
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings
from hivebrain.errors import NotConnected
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM
from hivebrain.node.lock import NodeLock
from hivebrain.projections.store import ProjectionStore


@click.command()
@pass_settings
def stats(settings: Settings) -> None:
    """Counts, stream positions, lag and dead letters of this node."""
    store = ProjectionStore(settings.db_path)
    try:
        data: dict[str, Any] = {"node": settings.node, "projection": store.stats()}
        positions = {s: store.position(s) for s in (EVENTS_STREAM, HIVE_STREAM)}
        actors = read_stats(store.connection)  # written by the node's actor runtime
    finally:
        store.close()

    async def streams() -> dict[str, Any]:
        async with reach_nats(settings) as bus:
            return {s: await bus.last_seq(s) for s in positions}

    try:
        last = run(streams())
        data["streams"] = {
            s: {"last_seq": last[s], "applied": positions[s], "lag": last[s] - positions[s]}
            for s in positions
        }
    except NotConnected as exc:
        data["streams"] = {"error": str(exc)}
    data["node_running"] = NodeLock.held(settings.lock_file)
    if actors:
        data["actors"] = actors

    def text(d: dict[str, Any]) -> str:
        lines = [f"node {d['node']} ({'running' if d['node_running'] else 'stopped'})"]
        for key, value in d["projection"].items():
            lines.append(f"  {key:18} {value}")
        for stream, info in d["streams"].items():
            lines.append(f"  stream {stream:11} {info}")
        for a in d.get("actors", []):
            figures = " ".join(f"{k}={a[k]}" for k in ("processed", "lag", "failures", "restarts"))
            error = f" last_error={a['last_error']}" if a["last_error"] else ""
            lines.append(f"  actor {a['name']:12} {a['state']:11} {figures}{error}")
        return "\n".join(lines)

    emit(settings, data, text)
