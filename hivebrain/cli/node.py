"""Running a node of a homelab described in nodes.toml: `hivebrain node run`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from hivebrain.actors import ActorSetup, actors_for
from hivebrain.cli.support import install_stop_signals, pass_settings, run
from hivebrain.config import Settings
from hivebrain.node.homelab import load_homelab
from hivebrain.node.node import Node
from hivebrain.node.plan import HomelabWatcher, plan, profile
from hivebrain.transport.server import write_private


@click.group("node")
def node_group() -> None:
    """Run this machine as one node of the homelab in nodes.toml."""


@node_group.command("run")
@click.option("--node", "name", required=True, help="This node's name in nodes.toml.")
@click.option(
    "--config", "config_path", default="nodes.toml", show_default=True, help="The homelab file."
)
@click.option("--creds", "creds_dir", help="Credentials directory [<data dir>/creds].")
@pass_settings
def node_run(settings: Settings, name: str, config_path: str, creds_dir: str | None) -> None:
    """Start this node's nats-server (JetStream domain = the node's name; leaves link to the
    hub) and the node, until Ctrl-C. With `hivebrain --nats URL node run ...` the node uses a
    nats-server run elsewhere with the config `hivebrain node config` renders."""
    homelab = load_homelab(config_path)
    directory = Path(creds_dir) if creds_dir else settings.data_dir / "creds"
    node_settings, role, config = plan(settings, homelab, name, directory)

    spec = homelab.node(name)

    async def go() -> None:
        setup = ActorSetup(node_settings.data_dir, node_settings.embedder)
        actors = await asyncio.to_thread(actors_for, spec.actors, setup)  # loads models
        node = Node(
            node_settings,
            role=role,
            server=config,
            profile=profile(homelab, name),
            actors=actors,
        )
        stop = asyncio.Event()
        install_stop_signals(stop)
        await node.start()
        watcher = None
        if role.kind == "hub":  # nodes added to nodes.toml can join without a restart
            watcher = HomelabWatcher(node, Path(config_path), directory)
            await watcher.start()
        try:
            click.echo(f"node {name} ({role.kind}) is up, data in {node_settings.data_dir}")
            await stop.wait()
        finally:
            click.echo("stopping...")
            if watcher is not None:
                await watcher.stop()
            await node.stop()

    run(go())


@node_group.command("config")
@click.option("--node", "name", required=True, help="The node's name in nodes.toml.")
@click.option(
    "--config", "config_path", default="nodes.toml", show_default=True, help="The homelab file."
)
@click.option("--creds", "creds_dir", help="Credentials directory [<data dir>/creds].")
@click.option("--out", "out", help="Write it to this file (mode 0600) instead of stdout.")
@pass_settings
def node_config(
    settings: Settings, name: str, config_path: str, creds_dir: str | None, out: str | None
) -> None:
    """Render the nats-server config of a node, for a nats-server run separately (a system
    service, a container). It holds passwords: keep it private."""
    homelab = load_homelab(config_path)
    directory = Path(creds_dir) if creds_dir else settings.data_dir / "creds"
    _, _, config = plan(settings, homelab, name, directory)
    if out is None:
        click.echo(config.render(), nl=False)
        return
    write_private(Path(out), config.render())
    click.echo(f"wrote {out}")
