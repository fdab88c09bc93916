"""What running one node of a homelab means: its settings, role, server config and device
profile, derived from nodes.toml and its credentials (used by `node run` and the demo)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from hivebrain.background import cancel_and_wait
from hivebrain.config import Settings
from hivebrain.errors import HivebrainError
from hivebrain.node.credentials import load_many
from hivebrain.node.devices import DeviceProfile
from hivebrain.node.homelab import Homelab, load_homelab
from hivebrain.node.node import Node, NodeRole
from hivebrain.node.server_config import needed_credentials, server_config
from hivebrain.transport.server import RenderedServerConfig

log = structlog.get_logger(__name__)


def plan(
    settings: Settings,
    homelab: Homelab,
    name: str,
    creds_dir: Path,
    *,
    no_advertise: bool = False,
) -> tuple[Settings, NodeRole, RenderedServerConfig]:
    """The settings, role and nats-server config of node `name` (no I/O but reading secrets).
    `no_advertise`: see `server_config.render_server_config`."""
    spec = homelab.node(name)
    secrets = load_many(creds_dir, needed_credentials(homelab, name))
    own = secrets[name]
    # With `--nats URL` the node uses that server (run with `hivebrain node config`'s output);
    # by default it starts its own on the port nodes.toml gives it.
    local = f"nats://127.0.0.1:{spec.client_port}"
    node_settings = settings.model_copy(
        update={
            "node": name,
            "port": spec.client_port,
            "nats_url": local if settings.embedded else settings.nats_url,
            "embedder": spec.embedder_config(),
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


class HomelabWatcher:
    """Keeps a running hub in step with nodes.toml and the credentials directory: when either
    changes, the hub's nats-server config is rendered again and reloaded (SIGHUP, no restart),
    so a node added there can open its leaf link and join; the hub sources it at once."""

    def __init__(
        self,
        node: Node,
        config_path: Path,
        creds_dir: Path,
        *,
        no_advertise: bool = False,
        interval: float = 2.0,
    ) -> None:
        self._node = node
        self._config_path = config_path
        self._creds_dir = creds_dir
        self._no_advertise = no_advertise
        self._interval = interval
        self._seen = self._stamp()
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0

    def _stamp(self) -> tuple[object, ...]:
        files = [self._config_path, *sorted(self._creds_dir.glob("*.json"))]
        return tuple((f.name, f.stat().st_mtime_ns) for f in files if f.exists())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="homelab-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except HivebrainError as exc:  # a half-edited file: keep running as before
                log.warning("homelab.reload_skipped", error=str(exc))

    async def check(self) -> bool:
        """Reload if nodes.toml or a credentials file changed; True if it reloaded."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        node = self._node
        name = node.settings.node
        homelab = load_homelab(self._config_path)
        secrets = load_many(self._creds_dir, needed_credentials(homelab, name))
        config = server_config(
            homelab, name, secrets, node.settings.nats_dir, no_advertise=self._no_advertise
        )
        self._seen = stamp
        if node.server is not None:
            node.server.reload(config)
        if node.join is not None and node.bus is not None:
            node.join.allow(frozenset(n.name for n in homelab.nodes))
            leaves = [n.name for n in homelab.leaves]
            bus = node.bus
            # JetStream may answer "no responders" for a moment while the server reloads.
            sourced = await bus.retry(lambda: bus.streams.ensure_hub(name, leaves))
            node.join.sourced = set(sourced)
        self.reloads += 1
        log.info("homelab.reloaded", nodes=[n.name for n in homelab.nodes])
        return True
