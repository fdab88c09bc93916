"""Agents, spaces, sessions and consolidation on a hub and a leaf (real nats-servers): what one
node writes, the other sees; concurrent edits during a partition are a visible conflict with
the same winner on both nodes; a session started on one node continues on the other; two
nodes consolidating at once end in the same state."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from hive import Hive, wait_until

from hivebrain.app.agents import WorkingPolicy, create, set_policy
from hivebrain.app.brain import Brain
from hivebrain.app.chatlogs import ChatImporter, ImportSummary
from hivebrain.app.consolidation import publish_moves
from hivebrain.events.memory import MemoryStored
from hivebrain.node.link import SILENCE_S
from hivebrain.node.node import Node
from hivebrain.projections.consolidation_queries import plan
from hivebrain.projections.memory_queries import Filters
from hivebrain.projections.session_queries import history
from hivebrain.projections.store import ProjectionStore


@pytest.fixture
async def hive(tmp_path: Path) -> AsyncIterator[Hive]:
    h = Hive(tmp_path, leaves=("leaf1",))
    await h.start()
    yield h
    await h.stop()


@asynccontextmanager
async def brain_of(node: Node) -> AsyncIterator[Brain]:
    assert node.bus is not None
    publisher = await node.bus.publisher(ack_timeout=2.0, retries=30)
    brain = Brain(node.settings, node.bus, publisher)
    try:
        yield brain
    finally:
        await publisher.close()
        brain.store.close()


def store(node: Node) -> ProjectionStore:
    assert node.store is not None
    return node.store


async def both(hive: Hive, check: Callable[[ProjectionStore], bool], timeout: float = 30) -> None:
    """Wait until `check` holds on both nodes and they hold the same digest."""
    hub, leaf = store(hive.nodes["hub"]), store(hive.nodes["leaf1"])
    try:
        await wait_until(
            lambda: check(hub) and check(leaf) and hub.digest() == leaf.digest(), timeout
        )
    except TimeoutError:
        state = {n: (check(s), s.stats()) for n, s in (("hub", hub), ("leaf1", leaf))}
        raise AssertionError(f"the nodes did not converge: {state}") from None


async def test_spaces_moves_edits_and_forget_travel_both_ways(hive: Hive) -> None:
    async with brain_of(hive.nodes["hub"]) as hub, brain_of(hive.nodes["leaf1"]) as leaf:
        agent = (await create(hub, "scribe")).event.entity
        a = await hub.remember(MemoryStored(text="alpha note", agent=agent, space="working"))
        b = await hub.remember(MemoryStored(text="beta note", agent=agent))
        a_id, b_id = a.event.entity, b.event.entity
        await both(hive, lambda s: s.memory(b_id) is not None and s.memory(a_id) is not None)

        await leaf.move(a_id, "personal_logs", "a private thought")
        await leaf.edit(b_id, text="beta note, revised", tag=["revised"])
        await both(
            hive, lambda s: (r := s.memory(b_id)) is not None and (r.text or "").endswith("revised")
        )
        await hub.forget(a_id)
        await both(hive, lambda s: (r := s.memory(a_id)) is not None and r.forgotten)

        for node in hive.nodes.values():
            s = store(node)
            row_a, row_b = s.memory(a_id), s.memory(b_id)
            assert row_a is not None and row_a.space == "personal_logs" and row_a.forgotten
            assert row_b is not None and row_b.tags == ("revised",)
            listed = s.list_memories(agent="scribe", spaces=["long_term", "personal_logs"])
            assert [h.id for h in listed] == [b_id]
            assert s.list_memories() == []  # the default agent has none


async def test_concurrent_edits_in_a_partition_are_one_conflict_with_one_winner(
    hive: Hive,
) -> None:
    hub_node, leaf_node = hive.nodes["hub"], hive.nodes["leaf1"]
    async with brain_of(hub_node) as hub, brain_of(leaf_node) as leaf:
        stored = await hub.remember(MemoryStored(text="the boiler code is 4471", space="working"))
        memory = stored.event.entity
        await both(hive, lambda s: s.memory(memory) is not None)

        await hive.proxies["leaf1"].cut()
        assert leaf_node.link is not None
        await wait_until(lambda: not leaf_node.link.linked if leaf_node.link else False, 15)
        hub_edit = await hub.edit(memory, text="the boiler code is 5582")
        leaf_edit = await leaf.edit(memory, text="the boiler code is 9913")
        await hub.move(memory, "long_term", "hub says keep")
        await leaf.move(memory, "archive", "leaf says archive")
        await leaf.edit(memory, tag=["boiler"])  # on top of the leaf's own version
        row = store(leaf_node).memory(memory)
        assert row is not None and row.text == "the boiler code is 9913"  # cut off, still works

        # Cut for longer than the hub's silence threshold, so the leaf's hello after the cut
        # restarts the hub's source at once (a shorter cut waits for nats-server's retry).
        await asyncio.sleep(SILENCE_S + 0.5)
        await hive.proxies["leaf1"].restore()
        await both(hive, lambda s: len(s.conflicts()) == 1 and "boiler" in s.memory(memory).tags)  # type: ignore[union-attr]

    edits = {
        hub_edit.event.stamp: "the boiler code is 5582",
        leaf_edit.event.stamp: "the boiler code is 9913",
    }
    lww_winner = edits[max(edits)]
    seen: dict[str, tuple[object, ...]] = {}
    for name, node in hive.nodes.items():
        s = store(node)
        [conflict] = s.conflicts()
        assert conflict.strategy == "lww" and conflict.winner.text == lww_winner
        assert {v.text for v in (conflict.winner, *conflict.losers)} == set(edits.values())
        row = s.memory(memory)
        assert row is not None
        seen[name] = (row.text, row.space, row.tags)
        with ProjectionStore(s.path, strategy="device-priority") as priority:
            [other] = priority.conflicts()
            seen[name + "/device-priority"] = (other.winner.text, other.winner.node)
    assert seen["hub"] == seen["leaf1"]
    assert seen["hub"][2] == ("boiler",)
    assert seen["hub/device-priority"] == seen["leaf1/device-priority"]


async def test_a_session_started_on_one_node_continues_on_another(hive: Hive) -> None:
    def turn(n: int, where: str) -> MemoryStored:
        return MemoryStored(
            user_message=f"question {n} asked on the {where}",
            response=f"answer {n}",
            session="handoff",
            space="working",
        )

    async with brain_of(hive.nodes["hub"]) as hub, brain_of(hive.nodes["leaf1"]) as leaf:
        for n in range(3):
            await hub.remember(turn(n, "hub"))
        await both(hive, lambda s: len(history(s.connection, "handoff", Filters(), 100)) == 3)
        for n in range(3, 5):
            await leaf.remember(turn(n, "leaf"))
        await hub.remember(MemoryStored(text="elsewhere", session="other"))
        await both(hive, lambda s: len(history(s.connection, "handoff", Filters(), 100)) == 5)

    shown = {
        name: [
            (t.user_message, t.node)
            for t in history(store(node).connection, "handoff", Filters(), 100)
        ]
        for name, node in hive.nodes.items()
    }
    assert shown["hub"] == shown["leaf1"]
    assert [q for q, _ in shown["hub"]] == [
        *(f"question {n} asked on the hub" for n in range(3)),
        *(f"question {n} asked on the leaf" for n in range(3, 5)),
    ]
    assert [n for _, n in shown["hub"]] == ["hub"] * 3 + ["leaf1"] * 2


async def test_two_nodes_consolidating_at_once_end_in_the_same_state(hive: Hive) -> None:
    async with brain_of(hive.nodes["hub"]) as hub, brain_of(hive.nodes["leaf1"]) as leaf:
        agent = (await create(hub, "planner")).event.entity
        await set_policy(hub, agent, WorkingPolicy(max_count=3))
        written = []
        for i in range(8):
            memory = MemoryStored(text=f"plan step {i}", agent=agent, space="working")
            written.append((await leaf.remember(memory)).event.entity)
        await both(hive, lambda s: len(s.list_memories(agent="planner", space="working")) == 8)

        now = time.time()
        hub_plan = plan(store(hive.nodes["hub"]).connection, now)
        leaf_plan = plan(store(hive.nodes["leaf1"]).connection, now)
        assert hub_plan == leaf_plan and [m.memory for m in hub_plan] == written[:5]
        await asyncio.gather(publish_moves(hub, hub_plan), publish_moves(leaf, leaf_plan))
        await both(hive, lambda s: len(s.list_memories(agent="planner", space="working")) == 3)

        for node in hive.nodes.values():
            s = store(node)
            working = {h.id for h in s.list_memories(agent="planner", space="working")}
            long_term = {h.id for h in s.list_memories(agent="planner", space="long_term")}
            assert working == set(written[5:]) and long_term == set(written[:5])
            assert plan(s.connection, time.time()) == []  # a second run has nothing to do


async def test_a_chat_log_imported_on_both_nodes_stays_one_copy_in_order(
    hive: Hive, tmp_path: Path
) -> None:
    path = tmp_path / "chat.json"
    messages = [
        {"role": role, "content": f"{role} {n}", "agent": "Helper" if role == "assistant" else None}
        for n in range(2)
        for role in ("user", "assistant")
    ]
    path.write_text(json.dumps({"id": "chat-x", "messages": messages}))

    def turns(s: ProjectionStore) -> list[str | None]:
        return [
            t.user_message for t in history(s.connection, "chat-x", Filters(all_agents=True), 10)
        ]

    def interactions(s: ProjectionStore) -> int:
        row = s.connection.execute("SELECT count(*) FROM interactions WHERE session = 'chat-x'")
        return int(row.fetchone()[0])

    async def import_on(brain: Brain) -> ImportSummary:
        importer = ChatImporter(brain)
        try:
            await importer.import_file(path)
            return await importer.finish()
        finally:
            importer.close()

    async with brain_of(hive.nodes["hub"]) as hub, brain_of(hive.nodes["leaf1"]) as leaf:
        assert (await import_on(hub)).turns == 2
        await both(hive, lambda s: len(turns(s)) == 2 and interactions(s) == 2)
        # The session goes on on the leaf, which then imports the same log.
        turn = MemoryStored(user_message="user 2", response="later", session="chat-x")
        await leaf.remember(turn)
        await both(hive, lambda s: len(turns(s)) == 3)
        again = await import_on(leaf)
        assert (again.turns, again.unchanged, again.interactions, again.events) == (0, 2, 0, 0)
        await both(hive, lambda s: len(turns(s)) == 3)
    for node in hive.nodes.values():
        assert turns(store(node)) == ["user 0", "user 1", "user 2"]
        assert interactions(store(node)) == 2
