"""Erase everywhere: after `hivebrain erase`, no stream and no database file on any node holds
the memory's text (the store files are searched byte for byte), a node cut off during the
erase does its part when it returns, a late copy of an erased event is dropped, every node
confirms, and the digests are equal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hive import Hive, Writer, wait_until
from nodeproc import Cli

from hivebrain.app.context import ToolCache
from hivebrain.events import Event
from hivebrain.events.embedding import EmbeddingComputed, content_hash
from hivebrain.events.envelope import VersionRef
from hivebrain.events.interaction import InteractionLogged
from hivebrain.events.memory import MemoryEdited, MemoryErased, MemoryStored
from hivebrain.node.node import Node
from hivebrain.projections.erasures import split_erased
from hivebrain.projections.store import ProjectionStore

SECRET = "the vault code is zebra-7731-quartz"
LATE = "edited while cut off: zebra-7731-quartz-and-more"
KEEP = "a memory that stays: plain-heron-2048"


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def store(node: Node) -> ProjectionStore:
    assert node.store is not None
    return node.store


def confirmed(node: Node, memory: str) -> set[str]:
    erasure = store(node).erasure(memory)
    return set() if erasure is None else set(erasure.confirmed)


async def test_erase_reaches_every_node_and_leaves_no_trace(tmp_path: Path) -> None:
    hive = Hive(tmp_path)
    await hive.start()
    try:
        hub, leaf1, leaf2 = (hive.nodes[n] for n in ("hub", "leaf1", "leaf2"))
        [stored] = await Writer(leaf1).write([MemoryStored(text=SECRET, tags=("vault",))])
        memory = stored.entity
        await Writer(leaf1).write(
            [EmbeddingComputed(model="m", dim=2, vector=b"\0" * 8, content_hash="h")],
            entity=memory,
        )
        [asked] = await Writer(hub).write(
            [InteractionLogged(query=SECRET, response=f"stored {memory}", tool="memory_store")]
        )
        [kept] = await Writer(hub).write([MemoryStored(text=KEEP)])
        nodes = (hub, leaf1, leaf2)
        await wait_until(lambda: all(store(n).stats()["applied"] == 4 for n in nodes), 20)
        assert hub.bus is not None
        cache = await ToolCache(hub.bus, "hub").open()
        await cache.put("memory_recall", {"query": "vault"}, {"results": [{"text": SECRET}]})
        # The text is there to be found before the erase (the search below is meaningful). Only
        # the servers' files while the nodes run: reading a SQLite file from this process would
        # drop the process's POSIX locks on it.
        assert files_holding(tmp_path / "hub" / "nats", SECRET.encode())

        # leaf2 is cut off and edits the memory meanwhile: its copy arrives after the erase.
        await hive.proxies["leaf2"].cut()
        row = store(leaf2).memory(memory)
        assert row is not None and row.version is not None
        await Writer(leaf2).write(
            [MemoryEdited(base=VersionRef.of(row.version), text=LATE)], entity=memory
        )

        cli = Cli(tmp_path / "hub", hive.ports["hub"], node="hub")
        out = await asyncio.to_thread(cli.ok, "--json", "erase", memory, "--yes")
        assert json.loads(out)["type"] == "memory.erased"
        await wait_until(lambda: confirmed(hub, memory) >= {"hub", "leaf1"}, 20)
        assert store(hub).memory(memory) is None and store(leaf1).memory(memory) is None
        assert store(leaf2).memory(memory) is not None  # still cut off

        await hive.proxies["leaf2"].restore()
        everyone = {"hub", "leaf1", "leaf2"}
        await wait_until(lambda: all(confirmed(n, memory) == everyone for n in nodes), 60)
        await wait_until(lambda: len({store(n).digest() for n in nodes}) == 1, 30)
        for node in nodes:
            assert store(node).memory(memory) is None
            assert store(node).memory(kept.entity) is not None
            assert store(node).search_memories("zebra") == []
            rows = store(node).connection.execute(
                "SELECT count(*) FROM interactions WHERE entity = ?", (asked.entity,)
            )
            assert rows.fetchone()[0] == 0
        status = json.loads(await asyncio.to_thread(cli.ok, "--json", "erase", "--status", memory))
        assert set(status["confirmed"]) == everyone
        assert status["content_hash"] == content_hash(SECRET)
        assert status["interactions"] == [asked.entity]
        # The erase event itself holds no text, only the id and the hash.
        erasure = store(hub).erasure(memory)
        assert erasure is not None and SECRET not in json.dumps(erasure.__repr__())
    finally:
        await hive.stop()

    for name in ("hub", "leaf1", "leaf2"):  # servers stopped: their files are final
        for needle in (SECRET, LATE, "zebra-7731"):
            assert files_holding(tmp_path / name, needle.encode()) == [], (name, needle)
        assert files_holding(tmp_path / name, KEEP.encode())


async def test_erase_errors(node: Node, tmp_path: Path) -> None:
    cli = Cli(node.settings.data_dir, node.settings.port)
    unknown = await asyncio.to_thread(cli.run, "erase", "no-such-memory", "--yes")
    assert unknown.code == 3 and "no memory 'no-such-memory'" in unknown.err
    [stored] = await Writer(node).write([MemoryStored(text="to be erased")])
    assert node.projector is not None
    await wait_until(lambda: store(node).memory(stored.entity) is not None, 10)
    unconfirmed = await asyncio.to_thread(cli.run, "erase", stored.entity)
    assert unconfirmed.code == 2 and "--yes" in unconfirmed.err
    assert store(node).memory(stored.entity) is not None
    await asyncio.to_thread(cli.ok, "erase", stored.entity, "--yes")
    again = await asyncio.to_thread(cli.run, "erase", stored.entity, "--yes")
    assert again.code == 2 and "already erased" in again.err
    missing = await asyncio.to_thread(cli.run, "erase", "--status", "nothing-here")
    assert missing.code == 3


@pytest.mark.parametrize("erase_first", [True, False])
def test_late_copies_are_dropped_in_any_order(tmp_path: Path, erase_first: bool) -> None:
    """The projection is the same whether the erase comes before or after the events it
    erases, and the late copies are reported as to be deleted."""
    stored = Event.new(MemoryStored(text=SECRET), node="n1", lamport=1)
    edited = Event.new(
        MemoryEdited(base=VersionRef.of(stored.stamp), text=LATE),
        node="n2",
        lamport=2,
        entity=stored.entity,
    )
    erased = Event.new(
        MemoryErased(content_hash=content_hash(SECRET)), node="n1", lamport=3, entity=stored.entity
    )
    with ProjectionStore(tmp_path / "a.db") as a, ProjectionStore(tmp_path / "b.db") as b:
        order = [erased, stored, edited] if erase_first else [stored, edited, erased]
        for e in order:
            a.apply_events([e])
        b.apply_events([erased])
        assert a.memory(stored.entity) is None
        keep, dropped = split_erased(a.connection, [edited])
        assert keep == [] and dropped == {stored.entity: stored.entity}
        # `a` saw the erased events (their ids are forgotten once deleted from the streams).
        a.scrub_erased([stored.event_id, edited.event_id])
        assert a.digest() == b.digest()


def test_a_memory_stored_after_erasing_the_newest_one_is_searchable(tmp_path: Path) -> None:
    """SQLite gives the next memory the erased newest one's row number again; the keyword
    index must index it all the same."""
    with ProjectionStore(tmp_path / "p.db") as s:
        first = Event.new(MemoryStored(text="older heron notes"), node="n1", lamport=1)
        newest = Event.new(MemoryStored(text="newest heron notes"), node="n1", lamport=2)
        s.apply_events([first, newest])
        erase = MemoryErased(content_hash=content_hash("newest heron notes"))
        s.apply_events([Event.new(erase, node="n1", lamport=3, entity=newest.entity)])
        s.scrub_erased([newest.event_id])
        after = Event.new(MemoryStored(text="heron notes written later"), node="n1", lamport=4)
        s.apply_events([after])
        assert {h.id for h in s.search_memories("heron")} == {first.entity, after.entity}
