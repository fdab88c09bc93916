"""Node commands: up, stats, dead-letters, projections rebuild/digest."""

from __future__ import annotations

import asyncio

import click

from hivebrain.actors import ActorSetup, actors_for
from hivebrain.app.brain import Brain
from hivebrain.cli.support import install_stop_signals, pass_settings, run
from hivebrain.config import Settings
from hivebrain.embedding import query_vector
from hivebrain.embedding.config import DEFAULT_OLLAMA_URL, EmbedderConfig
from hivebrain.events.memory import MemoryStored
from hivebrain.events.subjects import EVENTS_STREAM
from hivebrain.node.devices import DeviceProfile
from hivebrain.node.node import Node
from hivebrain.projections import embedding_queries
from hivebrain.projections.store import ProjectionStore

WELCOME = "hivebrain is running: what one node remembers, every node of the homelab recalls"


@click.command()
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
