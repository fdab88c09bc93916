"""The consolidator actor on a real node: working memories over an agent's policy move by
`memory.moved` events as they arrive, old ones move on its timer, and nothing moves twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hive import Writer, wait_until
from local import local_settings

from hivebrain.actors import ConsolidatorActor
from hivebrain.events import Payload
from hivebrain.events.agent import AgentCreated
from hivebrain.events.memory import MemoryStored
from hivebrain.node.node import Node


def spaces(node: Node) -> dict[str, str]:
    assert node.store is not None
    rows = node.store.connection.execute("SELECT id, space FROM memories").fetchall()
    return {memory: space for memory, space in rows}


async def test_surplus_and_old_working_memories_move_once(tmp_path: Path) -> None:
    actor = ConsolidatorActor(every=0.3)
    node = Node(local_settings(tmp_path / "home"), actors=[actor])
    await node.start()
    try:
        writer = Writer(node)
        [agent] = await writer.write(
            [AgentCreated(name="scribe", working_max_count=3, consolidate_to="archive")]
        )
        notes: list[Payload] = [
            MemoryStored(text=f"note {i}", agent=agent.entity, space="working") for i in range(5)
        ]
        written = await writer.write(notes)
        ids = [e.entity for e in written]
        await wait_until(lambda: [spaces(node).get(i) for i in ids].count("archive") == 2, 20)
        assert [spaces(node)[i] for i in ids[:2]] == ["archive", "archive"]  # the oldest two
        # A memory older than the default agent's max age (7 days) moves on the timer.
        old = MemoryStored(text="an old scratch note", space="working")
        [stale] = await writer.write([old], ts=time.time() - 8 * 86400)
        await wait_until(lambda: spaces(node).get(stale.entity) == "long_term", 20)
        await asyncio.sleep(1.0)  # several more ticks and batches
        assert actor.moved == 3  # each move published once
    finally:
        await node.stop()
