"""Node commands: up, stats, dead-letters, projections rebuild/digest."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import asdict
from typing import Any

import click

from hivebrain.actors import ActorSetup, actors_for, read_stats
from hivebrain.app.brain import Brain
from hivebrain.cli.main import cli, emit, install_stop_signals, pass_settings, run
from hivebrain.cli.support import reach_nats
from hivebrain.config import Settings
from hivebrain.embedding import query_vector
from hivebrain.embedding.config import DEFAULT_OLLAMA_URL, EmbedderConfig
from hivebrain.errors import NotConnected
from hivebrain.events.memory import MemoryStored
from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM
from hivebrain.node.devices import DeviceProfile
from hivebrain.node.node import Node, NodeLock
from hivebrain.node.projector import Projector
from hivebrain.projections import embedding_queries
from hivebrain.projections.store import ProjectionStore

WELCOME = "hivebrain is running: what one node remembers, every node of the homelab recalls"


@cli.command()
@click.option("--welcome", is_flag=True, help="Show remember and recall working, then serve.")
@click.option(
    "--no-devices",
    is_flag=True,
    help="Do not announce this machine in the device registry nor send heartbeats.",
)
@click.option(
    "--embedder",
    "backend",
    type=click.Choice(["local", "ollama", "none"]),
    default="local",
    show_default=True,
    help="What gives memories and knowledge their vectors (none: keyword recall only).",
)
@click.option("--embed-model", default="all-minilm", show_default=True, help="Ollama model.")
@click.option("--embed-dim", type=click.IntRange(1, 65536), default=384, show_default=True)
@click.option("--ollama-url", default=DEFAULT_OLLAMA_URL, show_default=True)
@click.option(
    "--consolidate/--no-consolidate",
    default=True,
    show_default=True,
    help="Apply the agents' working-memory policies as memories arrive (the consolidator).",
)
@pass_settings
def up(
    settings: Settings,
    welcome: bool,
    no_devices: bool,
    backend: str,
    embed_model: str,
    embed_dim: int,
    ollama_url: str,
    consolidate: bool,
) -> None:
    """Start this node (and its embedded nats-server) until Ctrl-C."""
    embedder = None
    if backend != "none":
        embedder = EmbedderConfig(
            backend="ollama" if backend == "ollama" else "local",
            model=embed_model,
            dim=embed_dim,
            url=ollama_url,
        )
    settings = settings.model_copy(update={"embedder": embedder})

    async def go() -> None:
        profile = None if no_devices else DeviceProfile(name=settings.node)
        names = ["embedder"] if embedder is not None else []
        names += ["consolidator"] if consolidate else []
        setup = ActorSetup(settings.data_dir, embedder)
        actors = await asyncio.to_thread(actors_for, names, setup)  # loads the model
        node = Node(settings, profile=profile, actors=actors)
        stop = asyncio.Event()
        install_stop_signals(stop)
        await node.start()
        try:
            url = node.bus.nc.connected_url.geturl() if node.bus else settings.nats_url
            click.echo(f"node {settings.node} is up: NATS {url}, data in {settings.data_dir}")
            if welcome:
                await _welcome(node)
            click.echo("Ctrl-C stops it.")
            await stop.wait()
        finally:
            click.echo("stopping...")
            await node.stop()

    run(go())


async def _welcome(node: Node) -> None:
    assert node.bus is not None and node.store is not None and node.projector is not None
    brain = Brain(node.settings, node.bus, await node.bus.publisher())
    store = node.store
    try:
        if not store.search_memories("homelab recalls", limit=1):
            written = await brain.remember(MemoryStored(text=WELCOME, tags=("welcome",)))
            await node.projector.wait_for(EVENTS_STREAM, written.ack.seq)
            click.echo(f'$ hivebrain remember "{WELCOME}" --tag welcome')
            click.echo(f"remembered {written.event.entity}")
        question = "which machines share what they know?"  # no word in common with it
        found, why = await query_vector(node.settings, question)
        if found is not None:
            await _vectors_applied(store, found[0])
        result = store.recall(
            question,
            query_vector=found[1] if found else None,
            model=found[0] if found else None,
            limit=3,
        )
        click.echo(f'$ hivebrain recall "{question}"')
        for hit in result.hits:
            click.echo(f"{hit.score:7.3f}  {hit.kind:<7}  {hit.id}  {hit.text}")
        if why or result.note:
            click.echo(why or result.note)
        click.echo("In another terminal: .venv/bin/hivebrain remember / recall / stats --help")
    finally:
        await brain.publisher.close()
        brain.store.close()


async def _vectors_applied(store: ProjectionStore, model: str, timeout: float = 30.0) -> None:
    """Wait (a little) until every memory has its vector, so the first recall uses them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        missing = embedding_queries.without_vector(store.connection, model, 1)
        if not missing:
            return
        await asyncio.sleep(0.1)


@cli.command()
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


@cli.command("dead-letters")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@pass_settings
def dead_letters(settings: Settings, limit: int) -> None:
    """Messages that could not be applied, with the reason."""
    store = ProjectionStore(settings.db_path)
    try:
        rows = [asdict(d) for d in store.dead_letters(limit)]
    finally:
        store.close()
    emit(
        settings,
        rows,
        lambda rs: (
            "\n".join(f"{r['stream']} #{r['seq']}: {r['reason']}" for r in rs) or "no dead letters"
        ),
    )


@cli.group()
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
                store = ProjectionStore(settings.db_path)
                try:
                    store.reset()
                    total = sum([await bus.last_seq(s) for s in (EVENTS_STREAM, HIVE_STREAM)])
                    started = time.perf_counter()
                    projector = Projector(
                        bus,
                        store,
                        node=settings.node,
                        batch_size=5000,
                        high_water=50_000,
                        separate_process=True,
                    )
                    try:
                        with click.progressbar(
                            length=total, label="replaying", file=sys.stderr
                        ) as bar:

                            def advance(n: int) -> None:
                                bar.update(n)

                            await projector.replay(advance)
                    finally:
                        await projector.stop()  # ends the writer process before the lock goes
                    seconds = time.perf_counter() - started
                    totals = projector.totals
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
