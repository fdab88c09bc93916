"""Device commands: list the registry with liveness, set a device's status, detect this machine."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import click

from hivebrain.app.connection import open_brain
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings
from hivebrain.errors import NotFound
from hivebrain.events.device import DeviceStatusChanged, Status
from hivebrain.node.devices import device_row
from hivebrain.node.hardware import capabilities, classify, detect
from hivebrain.node.liveness import FLUSH_INTERVAL_S, read_liveness
from hivebrain.projections.store import ProjectionStore

STATUSES: tuple[Status, ...] = ("online", "offline", "maintenance", "retired")


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no devices known (is a node up? it registers itself on start)"
    head = ("NAME", "TIER", "ARCH", "CORES", "RAM", "GPU", "STATUS", "LIVE", "LAST SEEN", "CAPS")
    now = time.time()
    body = [
        (
            r["name"],
            r["tier"],
            r["arch"] or "-",
            str(r["cores"]),
            f"{r['ram_mb'] / 1024:.1f}G",
            r["gpu"] or "-",
            r["status"] or "-",
            "online" if r["online"] else "offline",
            _ago(None if r["last_seen"] is None else now - r["last_seen"]),
            ",".join(r["capabilities"]) or "-",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in (head, *body)) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in (head, *body)
    )


@click.group(invoke_without_command=True)
@pass_settings
def devices(settings: Settings) -> None:
    """The homelab's devices: tier, hardware, capabilities, status and liveness."""
    if click.get_current_context().invoked_subcommand is not None:
        return
    store = ProjectionStore(settings.db_path)
    try:
        records = store.devices()
    finally:
        store.close()
    seen = read_liveness(settings.db_path)
    now = time.time()
    rows = []
    for record in records:
        live = seen.get(record.name)
        rows.append(
            {
                **device_row(record),
                "online": live is not None and live.online(now, lag=FLUSH_INTERVAL_S),
                "last_seen": None if live is None else live.last_seen,
                "load": None if live is None else live.load,
                "mem": None if live is None else live.mem,
            }
        )
    emit(settings, rows, _table)


@devices.command()
@click.argument("name")
@click.argument("status", type=click.Choice(STATUSES))
@click.option("--reason", default="", help="Why (shown in the registry).")
@pass_settings
def status(settings: Settings, name: str, status: Status, reason: str) -> None:
    """Set a device's status (an event; heartbeats never write one)."""

    async def go() -> dict[str, Any]:
        async with open_brain(settings) as brain:
            if brain.store.device(name) is None:
                raise NotFound(f"no device {name!r} known on this node")
            written = await brain.publish(
                DeviceStatusChanged(status=status, reason=reason), entity=name
            )
            return {
                "name": name,
                "status": status,
                "reason": reason,
                "event_id": written.event.event_id,
                "stream": written.ack.stream,
                "seq": written.ack.seq,
                "applied": written.applied,
            }

    data = run(go())
    emit(settings, data, lambda d: f"{d['name']} is {d['status']} ({d['stream']} #{d['seq']})")


@devices.command("detect")
@pass_settings
def detect_command(settings: Settings) -> None:
    """What this machine is, as a node here would register it (publishes nothing)."""
    hw = detect()
    data = {**asdict(hw), "tier": classify(hw), "capabilities": list(capabilities(hw))}

    def shown(value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(value) or "-"
        return "-" if value is None else str(value)

    def text(d: dict[str, Any]) -> str:
        return "\n".join(f"{key:13} {shown(value)}" for key, value in d.items())

    emit(settings, data, text)
