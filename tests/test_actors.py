"""The actor runtime against a real nats-server through an in-process Node: batches of the
consumed types only, restart with back-off while other actors keep going, redelivery of what
a failing actor did not finish, lag, durable positions across a node restart, a clean stop,
and the figures in `hivebrain stats` from another process."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest
from hive import Writer, memories, wait_until
from local import local_settings
from nodeproc import Cli

from hivebrain.actors import (
    Actor,
    ActorRuntime,
    ActorSetup,
    ActorStats,
    Context,
    actors_for,
    consumer_config,
    register,
)
from hivebrain.actors.registry import ACTORS
from hivebrain.errors import ConfigError
from hivebrain.events import Event, Payload
from hivebrain.events.memory import MemoryForgotten, MemoryStored
from hivebrain.events.subjects import HIVE_STREAM
from hivebrain.events.task import TaskCompleted, TaskRequested
from hivebrain.node.node import Node


class Recorder(Actor):
    """Keeps every batch it is given."""

    name = "recorder"
    consumes: ClassVar[tuple[type[Payload], ...]] = (MemoryStored, TaskRequested)
    batch_size = 20

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self.starts = 0
        self.stops = 0

    async def on_start(self, ctx: Context) -> None:
        await super().on_start(ctx)
        self.starts += 1

    async def on_stop(self) -> None:
        self.stops += 1

    async def handle(self, events: list[Event]) -> None:
        self.batches.append(events)

    def ids(self) -> list[str]:
        return [e.event_id for batch in self.batches for e in batch]


class Flaky(Recorder):
    """Fails its first `failures` batches, then records like a Recorder."""

    name = "flaky"
    consumes = (MemoryStored,)

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0
        self.failed: list[BaseException] = []

    async def handle(self, events: list[Event]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"boom {self.calls}")
        await super().handle(events)

    def on_failure(self, exc: BaseException) -> None:
        self.failed.append(exc)


class Slow(Recorder):
    """Takes its time over each batch, several batches at once."""

    name = "slow"
    consumes = (MemoryStored,)
    batch_size = 5
    concurrency = 3

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.peak = 0

    async def handle(self, events: list[Event]) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.1)
        self.in_flight -= 1
        await super().handle(events)


def by_name(runtime: ActorRuntime) -> dict[str, ActorStats]:
    return {s.name: s for s in runtime.stats()}


async def lag_zero(runtime: ActorRuntime, timeout: float = 10.0) -> None:
    async def check() -> bool:
        return all(s.lag == 0 for s in await runtime.refresh())

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, runtime.stats()
        await asyncio.sleep(0.1)


async def test_an_actor_gets_batches_of_its_types_only(tmp_path: Path) -> None:
    recorder = Recorder()
    node = Node(local_settings(tmp_path / "home"), actors=[recorder])
    await node.start()
    try:
        assert node.actors is not None and node.bus is not None
        others: list[Payload] = [MemoryForgotten(reason="same family, other type")] * 5
        others += [TaskCompleted(result="other type of a consumed family")] * 5
        wanted: list[Payload] = [*memories("wanted", 50), TaskRequested(kind="embed")]
        written = await Writer(node).write([*others, *wanted, *others])
        # A message that is no event at all: counted as bad, acknowledged, skipped.
        await node.bus.js.publish("hive.n1.memory.junk", b"\xc1 not msgpack")

        expected = [e.event_id for e in written if isinstance(e.payload, MemoryStored)]
        expected += [e.event_id for e in written if isinstance(e.payload, TaskRequested)]
        await wait_until(lambda: len(recorder.ids()) == 51, 10)
        await lag_zero(node.actors)
        assert sorted(recorder.ids()) == sorted(expected)  # each once, nothing else
        assert all(len(b) <= Recorder.batch_size for b in recorder.batches)
        assert len(recorder.batches) < 51  # batched, not one by one
        order = [e.event_id for e in written]
        assert recorder.ids() == sorted(recorder.ids(), key=order.index)  # stream order
        stats = by_name(node.actors)["recorder"]
        assert stats.state == "running" and stats.processed == 51 and stats.bad == 1
        assert stats.failures == 0 and stats.lag == 0
        assert recorder.ctx.node == "n1"

        info = await node.bus.js.consumer_info(HIVE_STREAM, "actor-recorder-n1")
        assert sorted(info.config.filter_subjects) == ["hive.*.memory.>", "hive.*.task.>"]
    finally:
        await node.stop()
    assert recorder.starts == recorder.stops == 1


async def test_a_failing_actor_restarts_with_back_off_and_others_keep_going(
    tmp_path: Path,
) -> None:
    flaky, steady = Flaky(failures=3), Recorder()
    settings = local_settings(tmp_path / "home")
    node = Node(settings, actors=[flaky, steady])
    await node.start()
    try:
        assert node.actors is not None
        written = await Writer(node).write(memories("m", 30))
        ids = sorted(e.event_id for e in written)
        # The steady actor is not held up by the other one's failures.
        await wait_until(lambda: sorted(steady.ids()) == ids, 5)
        assert len(flaky.ids()) < len(ids)
        # Back-off 0.5 s, 1 s, 2 s; the failed batches come back and are handled once.
        await wait_until(lambda: sorted(flaky.ids()) == ids, 15)
        await lag_zero(node.actors)
        stats = by_name(node.actors)
        assert stats["flaky"].failures == 3 and stats["flaky"].restarts == 3
        assert stats["flaky"].last_error == "RuntimeError: boom 3"
        assert stats["flaky"].state == "running" and stats["flaky"].processed == 30
        assert stats["recorder"].failures == stats["recorder"].restarts == 0
        assert [str(e) for e in flaky.failed] == ["boom 1", "boom 2", "boom 3"]
        assert flaky.starts == 4 and flaky.stops == 3  # each incarnation ends with on_stop

        # The figures reach `hivebrain stats` in another process.
        await node.actors.refresh()
        await wait_until(lambda: _cli_actors(settings.data_dir, settings.port)[0] == 30, 5)
        rows = json.loads(Cli(settings.data_dir, settings.port).ok("--json", "stats"))["actors"]
        assert [r["name"] for r in rows] == ["flaky", "recorder"]
        assert rows[0]["restarts"] == 3 and rows[0]["last_error"] == "RuntimeError: boom 3"
        text = Cli(settings.data_dir, settings.port).ok("stats")
        assert "actor flaky" in text and "restarts=3" in text
    finally:
        runtime = node.actors
        await node.stop()
    assert runtime is not None
    assert {s.state for s in runtime.stats()} == {"stopped"}
    assert flaky.starts == flaky.stops == 4


def _cli_actors(home: Path, port: int) -> tuple[int, list[dict[str, object]]]:
    rows = json.loads(Cli(home, port).ok("--json", "stats")).get("actors", [])
    processed = next((int(r["processed"]) for r in rows if r["name"] == "flaky"), 0)
    return processed, rows


async def test_concurrency_bounds_the_batches_in_flight(tmp_path: Path) -> None:
    slow = Slow()
    node = Node(local_settings(tmp_path / "home"), actors=[slow])
    await node.start()
    try:
        assert node.actors is not None
        written = await Writer(node).write(memories("m", 60))
        await wait_until(lambda: len(slow.ids()) == 60, 10)
        assert sorted(slow.ids()) == sorted(e.event_id for e in written)
        assert 1 < slow.peak <= Slow.concurrency
        assert all(len(b) <= Slow.batch_size for b in slow.batches)
        await lag_zero(node.actors)
    finally:
        await node.stop()


async def test_positions_survive_a_node_restart(tmp_path: Path) -> None:
    settings = local_settings(tmp_path / "home")
    first, second = Recorder(), Recorder()
    node = Node(settings, actors=[first])
    await node.start()
    try:
        await Writer(node).write(memories("before", 40))
        await wait_until(lambda: len(first.ids()) == 40, 10)
    finally:
        await node.stop()

    node = Node(settings, actors=[second])
    await node.start()
    try:
        assert node.actors is not None and node.bus is not None
        await lag_zero(node.actors)  # nothing pending nor awaiting an ack after the restart
        await Writer(node).write(memories("after", 10))
        await wait_until(lambda: len(second.ids()) == 10, 10)
        await lag_zero(node.actors)
        counts = Counter(first.ids() + second.ids())
        assert len(counts) == 50 and set(counts.values()) == {1}
        info = await node.bus.js.consumer_info(HIVE_STREAM, "actor-recorder-n1")
        assert info.num_redelivered == 0
    finally:
        await node.stop()


async def test_stop_is_clean_and_prompt(tmp_path: Path) -> None:
    recorder = Recorder()
    node = Node(local_settings(tmp_path / "home"), actors=[recorder])
    await node.start()
    runtime = node.actors
    assert runtime is not None
    loop = asyncio.get_running_loop()
    started = loop.time()
    await node.stop()
    assert loop.time() - started < 5
    assert node.actors is None
    assert [s.state for s in runtime.stats()] == ["stopped"]
    assert recorder.starts == recorder.stops == 1


def test_consumer_config_filters_by_family() -> None:
    config = consumer_config(Flaky(0), "pi1", ack_wait=30)
    assert config.durable_name == config.name == "actor-flaky-pi1"
    assert config.filter_subject == "hive.*.memory.>" and not config.filter_subjects
    assert config.max_ack_pending == Flaky.batch_size * Flaky.concurrency


def test_registry_names_the_known_actors() -> None:
    class Echo(Actor):
        name = "echo-test"
        consumes = (MemoryStored,)

    register(Echo)
    setup = ActorSetup(Path("."))
    try:
        [actor] = actors_for(["echo-test", "echo-test"], setup)
        assert isinstance(actor, Echo)
        with pytest.raises(ConfigError, match=r"unknown actor 'router' \(known: .*echo-test"):
            actors_for(["echo-test", "router"], setup)
        with pytest.raises(ConfigError, match=r"embedder actor needs an embedder"):
            actors_for(["embedder"], setup)
    finally:
        del ACTORS["echo-test"]


def test_an_actor_without_types_is_refused() -> None:
    class Nothing(Actor):
        name = "nothing"

    class BadName(Recorder):
        name = "Bad.Name"

    for actor in (Nothing(), BadName()):
        with pytest.raises(ConfigError):
            actor.check()
