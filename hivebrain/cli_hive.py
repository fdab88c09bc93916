"""Running a node of a homelab described in nodes.toml: `hivebrain node run`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from .cli import cli, install_stop_signals, pass_settings, run
from .config import Settings
from .credentials import load_many
from .devices import DeviceProfile
from .homelab import Homelab, load_homelab
from .natsserver import RenderedServerConfig
from .node import Node, NodeRole
from .serverconf import needed_credentials, server_config


@cli.group("node")
def node_group() -> None:
    """Run this machine as one node of the homelab in nodes.toml."""


def plan(
    settings: Settings, homelab: Homelab, name: str, creds_dir: Path
) -> tuple[Settings, NodeRole, RenderedServerConfig]:
    """The settings, role and nats-server config of node `name` (no I/O but reading secrets)."""
    spec = homelab.node(name)
    secrets = load_many(creds_dir, needed_credentials(homelab, name))
    own = secrets[name]
    node_settings = settings.model_copy(
        update={
            "node": name,
            "port": spec.client_port,
            "nats_url": f"nats://127.0.0.1:{spec.client_port}",
            "embedded": True,
        }
    )
    if spec.role == "hub":
        role = NodeRole(
            kind="hub",
            leaves=tuple(n.name for n in homelab.leaves),
            allowed=frozenset(n.name for n in homelab.nodes),
            user=name,
            password=own.reveal(),
        )
    else:
        role = NodeRole(kind="leaf", hub=homelab.hub.name, user=name, password=own.reveal())
    config = server_config(homelab, name, secrets, node_settings.nats_dir)
    return node_settings, role, config


@node_group.command("run")
@click.option("--node", "name", required=True, help="This node's name in nodes.toml.")
@click.option(
    "--config", "config_path", default="nodes.toml", show_default=True, help="The homelab file."
)
@click.option("--creds", "creds_dir", help="Credentials directory [<data dir>/creds].")
@pass_settings
def node_run(settings: Settings, name: str, config_path: str, creds_dir: str | None) -> None:
    """Start this node's nats-server (JetStream domain = the node's name; leaves link to the
    hub) and the node, until Ctrl-C."""
    homelab = load_homelab(config_path)
    directory = Path(creds_dir) if creds_dir else settings.data_dir / "creds"
    node_settings, role, config = plan(settings, homelab, name, directory)

    async def go() -> None:
        spec = homelab.node(name)
        profile = DeviceProfile(
            name=name,
            tier=spec.tier,
            capabilities=spec.capabilities,
            specialization=spec.specialization,
            location=spec.location,
            models=spec.models,
        )
        node = Node(node_settings, role=role, server=config, profile=profile)
        stop = asyncio.Event()
        install_stop_signals(stop)
        await node.start()
        try:
            click.echo(f"node {name} ({role.kind}) is up, data in {node_settings.data_dir}")
            await stop.wait()
        finally:
            click.echo("stopping...")
            await node.stop()

    run(go())
