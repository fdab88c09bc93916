"""The hello a leaf node sends its hub over the leaf link, and what each side does with it.

Every second a leaf's node asks `hivebrain.join.<leaf>` (core NATS request/reply, not stored;
the server lets a node publish only its own name there, so the subject proves who asks). The hub's
node answers with its boot id and HIVE's last sequence, and:
- adds a HIVE source for a leaf it does not source yet (a new node joins without a hub restart);
- restarts the leaf's source when the leaf comes back after a silence (its link was cut, or
  either server restarted) and the source is stalled, so the leaf's offline writes flow at once
  instead of after the server's ~40 s retry back-off.
The leaf, on a hello answered after a silence, checks its HIVE mirror: if it stays behind the
hub's HIVE without progress, it recreates the mirror, which resumes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import structlog

from hivebrain.background import cancel_and_wait
from hivebrain.events.subjects import HIVE_STREAM
from hivebrain.node.server_config import JOIN_SUBJECT, join_subject
from hivebrain.transport.topology import Streams

log = structlog.get_logger(__name__)

SILENCE_S = 3.0  # no hello for this long: the link was down
STALLED_S = 5.0  # a source that delivered nothing for this long (or never) is stalled
MIN_RESTART_GAP_S = 5.0


class JoinService:
    """Hub side: answers hellos, sources new leaves, restarts sources after a silence."""

    def __init__(self, nc: Any, streams: Streams, hub: str, allowed: frozenset[str] | None) -> None:
        self._nc = nc
        self._streams = streams
        self._hub = hub
        self._allowed = allowed
        self._boot = uuid.uuid4().hex
        self._last_hello: dict[str, float] = {}
        self._last_restart: dict[str, float] = {}
        self._sub: Any = None
        self._lock = asyncio.Lock()
        self.sourced: set[str] = set()
        self.restarts = 0

    def allow(self, names: frozenset[str] | None) -> None:
        """Who may join from now on (nodes.toml changed)."""
        self._allowed = names

    async def start(self, sourced: list[str]) -> None:
        self.sourced = set(sourced)
        self._sub = await self._nc.subscribe(f"{JOIN_SUBJECT}.*", cb=self._on_hello)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _on_hello(self, msg: Any) -> None:
        node = msg.subject.rsplit(".", 1)[-1]
        if self._allowed is not None and node not in self._allowed:
            await msg.respond(json.dumps({"error": f"{node} is not in this hive"}).encode())
            return
        now = time.monotonic()
        silent = now - self._last_hello.get(node, 0.0) > SILENCE_S
        self._last_hello[node] = now
        async with self._lock:  # one stream update at a time
            try:
                if node not in self.sourced:
                    self.sourced = set(await self._streams.ensure_hub(self._hub, [node]))
                    log.info("hive.joined", node=node)
                elif (
                    silent
                    and now - self._last_restart.get(node, 0.0) > MIN_RESTART_GAP_S
                    and await self._stalled(node)
                ):
                    self._last_restart[node] = now
                    await self._streams.restart_source(self._hub, node)
                    self.restarts += 1
                last = await self._streams.last_seq(HIVE_STREAM)
            except Exception as exc:
                # Its source may be half-restarted: the next hello re-adds it.
                self.sourced.discard(node)
                log.warning("hive.hello_failed", node=node, error=str(exc))
                return
        reply = {"hub": self._hub, "boot": self._boot, "hive_last_seq": last}
        await msg.respond(json.dumps(reply).encode())

    async def _stalled(self, node: str) -> bool:
        """The leaf's source delivered nothing for a while (or never, since a restart): the
        server would only retry it after its back-off. A source that is busy is left alone."""
        for state in await self._streams.sources():
            if state.leaf == node:
                return state.active_s is None or state.active_s > STALLED_S
        return False


class LinkWatcher:
    """Leaf side: says hello every `interval`; after a silence, makes sure the mirror moves."""

    def __init__(
        self, nc: Any, streams: Streams, leaf: str, hub: str, interval: float = 1.0
    ) -> None:
        self._nc = nc
        self._streams = streams
        self._leaf = leaf
        self._hub = hub
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._check: asyncio.Task[None] | None = None
        self.linked = False
        self.mirror_restarts = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="link-watcher")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)  # first: until it has ended it may start a check
        await cancel_and_wait(self._check)

    async def _loop(self) -> None:
        hello = json.dumps({"node": self._leaf}).encode()
        subject = join_subject(self._leaf)
        while True:
            try:
                msg = await self._nc.request(subject, hello, timeout=self._interval)
                reply = json.loads(msg.data)
            except Exception:  # no answer: the link (or the hub) is down
                if self.linked:
                    log.info("link.down", hub=self._hub)
                self.linked = False
                await asyncio.sleep(self._interval)
                continue
            if "error" in reply:
                log.warning("link.refused", reason=reply["error"])
            elif not self.linked:
                self.linked = True
                log.info("link.up", hub=self._hub)
                if self._check is None or self._check.done():
                    self._check = asyncio.create_task(self._watch_mirror(reply["hive_last_seq"]))
            await asyncio.sleep(self._interval)

    async def _watch_mirror(self, hub_last: int, patience: float = 2.0) -> None:
        """Once the link is back: if the mirror makes no progress towards the hub's HIVE for
        `patience` seconds, recreate it."""
        before = await self._streams.last_seq(HIVE_STREAM)
        if before >= hub_last:
            return
        await asyncio.sleep(patience)
        now = await self._streams.last_seq(HIVE_STREAM)
        if now >= hub_last or now > before:
            return
        self.mirror_restarts += 1
        await self._streams.restart_mirror(self._leaf, self._hub)
