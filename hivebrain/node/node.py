"""The node: the composition root that wires a NATS server, the bus, the projection and the
projector together for one machine of the hive."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import structlog

from hivebrain.actors import Actor, ActorRuntime
from hivebrain.background import cancel_and_wait
from hivebrain.config import Settings, redact, write_runtime
from hivebrain.errors import ConfigError, HivebrainError
from hivebrain.events import LamportClock
from hivebrain.node.devices import DeviceProfile, DeviceServices
from hivebrain.node.eraser import Eraser
from hivebrain.node.link import JoinService, LinkWatcher
from hivebrain.node.lock import NodeLock
from hivebrain.node.projector import Projector
from hivebrain.node.rebuild import recover_clock
from hivebrain.node.server_config import join_inbox_prefix
from hivebrain.projections.store import BatchResult, ProjectionStore, SqliteClockStore
from hivebrain.transport.bus import Bus, connect
from hivebrain.transport.server import NatsServer, RenderedServerConfig, ServerConfig

log = structlog.get_logger(__name__)


def server_config(settings: Settings) -> ServerConfig:
    return ServerConfig(
        store_dir=settings.nats_dir,
        name=settings.node,
        host=settings.host,
        port=settings.port,
        domain=settings.node,
    )


@dataclass(frozen=True)
class NodeRole:
    """Where a node stands in the hive. The default, a hub with no leaves, is one machine alone."""

    kind: Literal["hub", "leaf"] = "hub"
    hub: str | None = None  # a leaf's hub
    leaves: tuple[str, ...] = ()  # a hub's leaves known from nodes.toml
    allowed: frozenset[str] | None = None  # a hub: who may join (None: anyone who reaches it)
    hello: bool = True  # a leaf: say hello to the hub (joining, fast catch-up)
    user: str | None = None  # this node's NATS user on its own server
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind == "leaf" and not self.hub:
            raise ConfigError("a leaf node needs the name of its hub")


class Node:
    """One running node: its nats-server (when embedded), streams, projector and, in a hive
    of several nodes, the hello over the leaf link."""

    def __init__(
        self,
        settings: Settings,
        role: NodeRole | None = None,
        server: ServerConfig | RenderedServerConfig | None = None,
        profile: DeviceProfile | None = None,
        actors: Sequence[Actor] = (),
    ) -> None:
        """`profile`: announce this node in the device registry and send heartbeats (what
        `up` and `node run` do); None runs without device services. `actors`: run these, each
        on its durable consumer of HIVE (see hivebrain.actors)."""
        self.settings = settings
        self._profile = profile
        self.devices: DeviceServices | None = None
        self.role = role or NodeRole()
        self._server_config = server
        self.server: NatsServer | None = None
        self.bus: Bus | None = None
        self.store: ProjectionStore | None = None
        self.projector: Projector | None = None
        self.clock: LamportClock | None = None
        self.eraser: Eraser | None = None
        self.join: JoinService | None = None
        self.link: LinkWatcher | None = None
        self._actors = tuple(actors)
        self.actors: ActorRuntime | None = None
        self._lock = NodeLock(settings.lock_file)
        self._watchdog: asyncio.Task[None] | None = None
        self.server_restarts = 0

    async def start(self) -> None:
        settings, role = self.settings, self.role
        self._lock.acquire()
        try:
            if settings.embedded:
                config = self._server_config or server_config(settings)
                self.server = NatsServer(config, binary=settings.nats_binary)
                await self.server.start()
            url = self.server.url if self.server else settings.nats_url
            self.bus = await connect(
                url,
                user=role.user,
                password=role.password,
                inbox_prefix=join_inbox_prefix(settings.node),  # the hub's replies reach us
            )
            await self._ensure_streams()
            self.store = ProjectionStore(settings.db_path, max_clock_jump=settings.max_clock_jump)
            await recover_clock(self.bus, self.store, settings.node)
            self.clock = LamportClock(SqliteClockStore(settings.db_path), block=1000)
            self.projector = Projector(
                self.bus, self.store, node=settings.node, on_batch=self._on_batch
            )
            self.eraser = Eraser(
                settings.node, self.bus, self.clock, str(settings.db_path), self.projector
            )
            await self.eraser.start()
            await self.projector.start()
            if self._profile is not None:
                self.devices = DeviceServices(
                    node=settings.node,
                    bus=self.bus,
                    clock=self.clock,
                    db_path=settings.db_path,
                    profile=self._profile,
                )
                await self.devices.start(self.projector)
            if self._actors:
                self.actors = await ActorRuntime.for_node(
                    self.bus,
                    settings.node,
                    self.clock,
                    settings.db_path,
                    self._actors,
                    online=self.online,
                    hub=role.hub if role.kind == "leaf" else None,
                )
            if role.kind == "leaf" and role.hub and role.hello:
                self.link = LinkWatcher(self.bus.nc, self.bus.streams, settings.node, role.hub)
                await self.link.start()
            if self.server is not None:
                self._watchdog = asyncio.create_task(self._supervise(), name="server-watchdog")
            write_runtime(settings, url, os.getpid())
        except BaseException:
            await self.stop()
            raise
        log.info("node.started", node=settings.node, role=role.kind, nats=redact(url))

    def _on_batch(self, result: BatchResult) -> None:
        assert self.clock is not None
        # the batch's transaction already raised the stored clock: memory only here
        self.clock.witness(result.max_lamport)
        if result.erasing and self.eraser is not None:
            self.eraser.notify(result.erasing)

    def online(self) -> bool:
        """Whether this node reaches its hub now (a hub, or a leaf without hellos: always)."""
        return self.link is None or self.link.linked

    async def _supervise(self, every: float = 1.0) -> None:
        """Start the node's nats-server again if it exits on its own; the node's client
        reconnects by itself and its stored positions make the rest resume."""
        while True:
            await asyncio.sleep(every)
            server = self.server
            if server is None or not server.exited:
                continue
            self.server_restarts += 1
            log.warning("nats_server.exited_restarting", node=self.settings.node)
            delay = every
            while True:  # e.g. its port not free yet: keep trying, backing off
                try:
                    await server.start()
                    if self.join is not None:  # its leaves' sources are restarted once linked
                        self.join.server_restarted()
                    break
                except HivebrainError as exc:
                    log.error("nats_server.restart_failed", error=str(exc), retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)

    async def _ensure_streams(self) -> None:
        assert self.bus is not None
        bus, role, name = self.bus, self.role, self.settings.node
        if role.kind == "leaf":
            hub = role.hub or ""
            await bus.retry(lambda: bus.streams.ensure_leaf(name, hub))
            return
        sourced = await bus.retry(lambda: bus.streams.ensure_hub(name, role.leaves))
        self.join = JoinService(bus.nc, bus.streams, name, role.allowed)
        await self.join.start(sourced)

    async def stop(self) -> None:
        if self.actors is not None:
            await self.actors.stop()
            self.actors = None
        if self._watchdog is not None:
            await cancel_and_wait(self._watchdog)
            self._watchdog = None
        if self.devices is not None:
            await self.devices.stop()
            self.devices = None
        if self.link is not None:
            await self.link.stop()
            self.link = None
        if self.join is not None:
            await self.join.stop()
            self.join = None
        if self.eraser is not None:
            await self.eraser.stop()
            self.eraser = None
        if self.projector is not None:
            await self.projector.stop()
            self.projector = None
        if self.bus is not None:
            await self.bus.close()
            self.bus = None
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.server is not None:
            await self.server.stop()
            self.server = None
        self._lock.release()
        log.info("node.stopped", node=self.settings.node)
