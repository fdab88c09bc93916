"""What running one node of a homelab means: its settings, role, server config and device
profile, derived from nodes.toml and its credentials (used by `node run` and the demo)."""

from __future__ import annotations

from pathlib import Path

from .config import Settings
from .credentials import load_many
from .devices import DeviceProfile
from .homelab import Homelab
from .natsserver import RenderedServerConfig
from .node import NodeRole
from .serverconf import needed_credentials, server_config


def plan(
    settings: Settings,
    homelab: Homelab,
    name: str,
    creds_dir: Path,
    *,
    no_advertise: bool = False,
) -> tuple[Settings, NodeRole, RenderedServerConfig]:
    """The settings, role and nats-server config of node `name` (no I/O but reading secrets).
    `no_advertise`: see `serverconf.render_server_config`."""
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
    config = server_config(
        homelab, name, secrets, node_settings.nats_dir, no_advertise=no_advertise
    )
    return node_settings, role, config


def profile(homelab: Homelab, name: str) -> DeviceProfile:
    """The device profile nodes.toml gives node `name` (the rest is detected)."""
    spec = homelab.node(name)
    return DeviceProfile(
        name=name,
        tier=spec.tier,
        capabilities=spec.capabilities,
        specialization=spec.specialization,
        location=spec.location,
        models=spec.models,
    )
