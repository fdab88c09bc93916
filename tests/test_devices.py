"""The device registry against a running node: a node announces itself once and then only what
changed; liveness travels as core-NATS heartbeats (never events) and lands in a node-local
table the CLI reads."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
from nodeproc import Cli

from hivebrain.app.brain import Brain
from hivebrain.events import Payload
from hivebrain.events.device import DeviceRegistered, DeviceUpdated
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM
from hivebrain.node.devices import (
    DeviceAnnouncer,
    DeviceProfile,
    DeviceServices,
    announcement,
    describe,
)
from hivebrain.node.hardware import Hardware, classify, detect
from hivebrain.node.liveness import FLUSH_INTERVAL_S, Heartbeat, read_liveness
from hivebrain.node.node import Node
from hivebrain.projections.device_queries import DeviceRecord

BEAT = 0.2  # heartbeat interval in these tests: offline after 3 x 0.2 s


@pytest.fixture
async def brain(node: Node) -> AsyncIterator[Brain]:
    assert node.bus is not None
    b = Brain(node.settings, node.bus, await node.bus.publisher())
    yield b
    await b.publisher.close()
    b.store.close()


async def eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def last_seqs(node: Node) -> tuple[int, int]:
    assert node.bus is not None
    return await node.bus.last_seq(EVENTS_STREAM), await node.bus.last_seq(HIVE_STREAM)


# -- what to announce (pure) ---------------------------------------------------------------------

PI = Hardware(arch="aarch64", cores=4, ram_mb=7800, gpu=None, os="Linux", hostname="pi")


def test_unknown_device_gets_a_full_registration() -> None:
    wanted = describe(DeviceProfile("pi-garage", location="garage", models=("a", "a", "b")), PI)
    assert wanted.tier == "edge" and wanted.capabilities == ("embed", "llm-small")
    assert wanted.models == ("a", "b")
    assert announcement(None, wanted) == wanted
    assert announcement(DeviceRecord("pi-garage", status="maintenance"), wanted) == wanted


def record_of(payload: DeviceRegistered) -> DeviceRecord:
    fields = payload.model_dump()
    del fields["name"]
    return DeviceRecord(name=payload.name, registered=True, **fields)


def test_only_changed_fields_are_updated_and_a_cleared_field_reregisters() -> None:
    profile = DeviceProfile("pi-garage", capabilities=("sensors",), location="garage")
    before = record_of(describe(profile, PI))
    assert announcement(before, describe(profile, PI)) is None
    moved = DeviceProfile("pi-garage", capabilities=("sensors",), location="attic", tier="micro")
    update = announcement(before, describe(moved, PI))
    assert isinstance(update, DeviceUpdated)
    assert update.model_dump(exclude_none=True) == {"tier": "micro", "location": "attic"}
    with_gpu = record_of(describe(profile, replace(PI, gpu="Jetson")))
    gone = announcement(with_gpu, describe(profile, PI))  # "gpu: None" is not an update
    assert isinstance(gone, DeviceRegistered) and gone.gpu is None


# -- announcing against a running node -----------------------------------------------------------


async def test_announcer_registers_once_then_updates_only_what_changed(
    node: Node, brain: Brain
) -> None:
    profile = DeviceProfile("n1", capabilities=("sensors",), location="garage", models=("m1",))
    first = await DeviceAnnouncer(profile, brain.store, brain.publish).announce()
    assert isinstance(first, DeviceRegistered)
    record = brain.store.device("n1")
    hw = detect()
    assert record is not None and record.registered
    assert record.tier == classify(hw) and record.cores == hw.cores and record.arch == hw.arch
    assert "sensors" in record.capabilities and record.location == "garage"
    seqs = await last_seqs(node)

    # A restart with the same profile: nothing to say.
    assert await DeviceAnnouncer(profile, brain.store, brain.publish).announce() is None
    assert await last_seqs(node) == seqs

    # The node moved: one device.updated carrying only the location.
    moved = DeviceProfile("n1", capabilities=("sensors",), location="attic", models=("m1",))
    update = await DeviceAnnouncer(moved, brain.store, brain.publish).announce()
    assert isinstance(update, DeviceUpdated)
    assert update.model_dump(exclude_none=True) == {"location": "attic"}
    assert (await last_seqs(node))[0] == seqs[0] + 1
    record = brain.store.device("n1")
    assert record is not None and record.location == "attic" and record.models == ("m1",)
    assert await DeviceAnnouncer(moved, brain.store, brain.publish).announce() is None


async def start_services(node: Node, **options: object) -> DeviceServices:
    """What the node does on start once wired: announce, heartbeat, track."""
    assert node.bus is not None and node.clock is not None and node.projector is not None
    services = DeviceServices(
        node=node.settings.node,
        bus=node.bus,
        clock=node.clock,
        db_path=node.settings.db_path,
        **options,  # type: ignore[arg-type]
    )
    await services.start(node.projector)
    return services


async def announced(services: DeviceServices) -> Payload | None:
    assert services.announced is not None
    return await asyncio.wait_for(services.announced, 15)


async def test_restarting_a_node_announces_nothing_new(node: Node) -> None:
    profile = DeviceProfile("n1", location="rack")
    services = await start_services(node, profile=profile, heartbeat_interval=BEAT)
    assert isinstance(await announced(services), DeviceRegistered)
    await services.stop()
    for _ in range(2):  # stop right after the announcement, restart: twice, nothing published
        await node.stop()
        await node.start()
        seqs = await last_seqs(node)
        services = await start_services(node, profile=profile, heartbeat_interval=BEAT)
        assert await announced(services) is None
        await services.stop()
        assert (await last_seqs(node))[0] == seqs[0]
    assert node.store is not None
    record = node.store.device("n1")
    assert record is not None and record.location == "rack"


# -- liveness ------------------------------------------------------------------------------------


async def test_heartbeats_track_liveness_without_events(node: Node) -> None:
    assert node.bus is not None
    nc = node.bus.nc
    assert node.store is not None
    before, digest = await last_seqs(node), node.store.digest()
    db = node.settings.db_path
    # n1: a node's device services without a profile (heartbeat and tracker, no announcement);
    # n2: the heartbeat of another node on the same server.
    services = await start_services(node, heartbeat_interval=BEAT)
    tracker, other = services.tracker, Heartbeat(nc, "n2", BEAT)
    try:
        await other.start()
        assert services.announced is None
        await eventually(lambda: tracker.online_nodes() == {"n1", "n2"}, "both nodes online")
        seen = tracker.seen["n2"]
        assert seen.interval == BEAT and seen.mem is not None and 0 <= seen.mem <= 100

        # Another process (the CLI) sees them through the liveness table within a flush.
        def stored_online() -> set[str]:
            return {n for n, s in read_liveness(db).items() if s.online(lag=FLUSH_INTERVAL_S)}

        await eventually(lambda: stored_online() == {"n1", "n2"}, "liveness rows", 3.0)

        await other.stop()
        stopped = time.monotonic()
        await eventually(lambda: not tracker.online("n2"), "n2 offline", 3.0)
        assert time.monotonic() - stopped >= 2 * BEAT  # not before it missed its beats
        assert tracker.online("n1")
        await eventually(lambda: stored_online() == {"n1"}, "n2 offline in the table", 3.0)
    finally:
        await other.stop()
        await services.stop()
    assert await last_seqs(node) == before  # heartbeats never became events
    assert node.store.stats()["applied"] == 0
    assert node.store.digest() == digest  # the liveness table is node state, not projection


# -- the CLI -------------------------------------------------------------------------------------


async def test_devices_command_lists_the_node_with_tier_and_liveness(node: Node) -> None:
    services = await start_services(node, profile=DeviceProfile("n1"), heartbeat_interval=BEAT)
    try:
        await announced(services)
        cli = Cli(node.settings.data_dir, node.settings.port)

        async def listed() -> list[dict[str, object]]:
            out: str = await asyncio.to_thread(cli.ok, "--json", "devices")
            rows: list[dict[str, object]] = json.loads(out)
            return rows

        rows = await listed()
        deadline = time.monotonic() + 5
        while not (rows and rows[0]["online"]) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            rows = await listed()
        [row] = rows
        hw = detect()
        assert row["name"] == "n1" and row["tier"] == classify(hw)
        assert row["cores"] == hw.cores and row["ram_mb"] == hw.ram_mb and row["gpu"] == hw.gpu
        assert row["online"] is True and isinstance(row["last_seen"], float)
        assert row["status"] is None

        text: str = await asyncio.to_thread(cli.ok, "devices")
        assert "n1" in text and classify(hw) in text and "online" in text

        seqs = await last_seqs(node)
        out = await asyncio.to_thread(
            cli.ok, "--json", "devices", "status", "n1", "maintenance", "--reason", "new disk"
        )
        assert json.loads(out)["applied"] is True
        assert (await last_seqs(node))[0] == seqs[0] + 1
        [row] = await listed()
        assert row["status"] == "maintenance" and row["status_reason"] == "new disk"

        missing = await asyncio.to_thread(cli.run, "devices", "status", "nobody", "retired")
        assert missing.code == 3 and "no device 'nobody'" in missing.err
    finally:
        await services.stop()
