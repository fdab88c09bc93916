"""The hello a leaf node sends its hub over the leaf link, and what each side does with it.

Every second a leaf's node asks `hivebrain.join.<leaf>` (core NATS request/reply, not stored;
the server lets a node publish only its own name there, so the subject proves who asks). The hub's
node answers with its boot id and HIVE's last sequence, and adds a HIVE source for a leaf it does
not source yet (a new node joins without a hub restart).

Catch-up after a gap of any length (a link cut for a second or an hour, either nats-server
restarted, the hub's own server restarted under its running node): nats-server resumes a source
or mirror by itself only when its consumer-create request is answered. One sent while the link
was down (the restarted hub's server creates its sources at once, before any leaf is back; a
retry fired during a cut) is lost, and the server waits for its 30 s timeout, then 10 s more per
failure, before it asks again. So neither side waits for a silence: both look at the stream's
state every second while the link is up and restart what is stalled.
- Hub (`JoinService`): for each leaf that said hello within `SILENCE_S` (its link is up now),
  a source that received nothing, not even the server's 1 s heartbeat, for `STALLED_S` (or never
  since it was set up) is restarted (`Streams.restart_source`: it resumes from the last message
  HIVE holds from that leaf, so nothing is lost or repeated).
- Leaf (`LinkWatcher`): after each answered hello, a stalled mirror that is behind the hub's
  HIVE is recreated (`Streams.restart_mirror`: a full copy with the hub's sequence numbers, so
  it is only done when something is missing).
Either must look stalled on two checks `CONFIRM_S` apart while the link is up, so a resume the
server started itself as the link came back is not cut short. When the hub's node restarts its
own nats-server, the hellos from before are forgotten (`JoinService.server_restarted`): a source
restarted before its leaf's link is back would only wait again.
Restarts of one source or mirror are spaced by `MIN_RESTART_GAP_S`, doubling up to
`MAX_RESTART_GAP_S` while it stays stalled (a link that keeps dropping never makes a tight loop).
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

HELLO_S = 1.0  # a leaf says hello this often
SILENCE_S = 2.5  # no hello from a leaf for this long: its link is down
STALLED_S = 2.5  # nothing received (the server sends a heartbeat every 1 s) for this long
CONFIRM_S = 0.9  # stalled on two checks this far apart (not a resume still in flight)
CHECK_S = 1.0  # how often the hub looks at its sources
MIN_RESTART_GAP_S = 3.0
MAX_RESTART_GAP_S = 30.0


def stalled(active_s: float | None) -> bool:
    """Whether a source or mirror with this `active` (seconds since it last received anything,
    None: never since it was set up) is stalled, given that its link is up."""
    return active_s is None or active_s > STALLED_S


class Pacer:
    """When one stalled source or mirror may be restarted: after it has looked stalled for
    `confirm` seconds, and at least a gap after its last restart; the gap doubles from
    MIN_RESTART_GAP_S to MAX_RESTART_GAP_S while it stays stalled."""

    def __init__(self, confirm: float = 0.0) -> None:
        self._confirm = confirm
        self._since: float | None = None
        self._last = float("-inf")
        self._gap = MIN_RESTART_GAP_S

    def healthy(self) -> None:
        self._since = None
        self._gap = MIN_RESTART_GAP_S

    def unlinked(self) -> None:
        """Its link is down: it cannot move now, and a stall counts again from the next check."""
        self._since = None

    def due(self, now: float) -> bool:
        """Seen stalled at `now`: may it be restarted now?"""
        if self._since is None:
            self._since = now
        return now - self._since >= self._confirm and now - self._last >= self._gap

    def restarted(self, now: float) -> None:
        again = now - self._last < 2 * MAX_RESTART_GAP_S  # the same stall as the last restart
        self._gap = min(self._gap * 2, MAX_RESTART_GAP_S) if again else MIN_RESTART_GAP_S
        self._last = now


class JoinService:
    """Hub side: answers hellos, sources new leaves, restarts a linked leaf's stalled source."""

    def __init__(self, nc: Any, streams: Streams, hub: str, allowed: frozenset[str] | None) -> None:
        self._nc = nc
        self._streams = streams
        self._hub = hub
        self._allowed = allowed
        self._boot = uuid.uuid4().hex
        self._last_hello: dict[str, float] = {}
        self._pacers: dict[str, Pacer] = {}
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.sourced: set[str] = set()
        self.restarts = 0

    def allow(self, names: frozenset[str] | None) -> None:
        """Who may join from now on (nodes.toml changed)."""
        self._allowed = names

    def server_restarted(self) -> None:
        """Our nats-server was restarted: a hello from before says nothing about the links now
        (a source restarted before its leaf is back would only wait again)."""
        self._last_hello.clear()

    async def start(self, sourced: list[str]) -> None:
        self.sourced = set(sourced)
        self._sub = await self._nc.subscribe(f"{JOIN_SUBJECT}.*", cb=self._on_hello)
        self._task = asyncio.create_task(self._watch(), name="join-watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _on_hello(self, msg: Any) -> None:
        node = msg.subject.rsplit(".", 1)[-1]
        if self._allowed is not None and node not in self._allowed:
            await msg.respond(json.dumps({"error": f"{node} is not in this hive"}).encode())
            return
        self._last_hello[node] = time.monotonic()
        try:
            if node not in self.sourced:
                async with self._lock:  # one stream update at a time
                    self.sourced = set(await self._streams.ensure_hub(self._hub, [node]))
                log.info("hive.joined", node=node)
            last = await self._streams.last_seq(HIVE_STREAM)
        except Exception as exc:  # the next hello tries again
            log.warning("hive.hello_failed", node=node, error=str(exc))
            return
        reply = {"hub": self._hub, "boot": self._boot, "hive_last_seq": last}
        await msg.respond(json.dumps(reply).encode())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_S)
            try:
                await self.check()
            except Exception as exc:  # e.g. our own server restarting: the next check
                log.debug("hive.check_failed", error=str(exc))

    async def check(self) -> int:
        """Restart the source of every linked leaf that is stalled (when its pacer allows);
        returns how many were restarted."""
        now = time.monotonic()
        hello = self._last_hello
        linked = {n for n in self.sourced if now - hello.get(n, float("-inf")) < SILENCE_S}
        for leaf in self.sourced - linked:
            self._pacers.setdefault(leaf, Pacer(confirm=CONFIRM_S)).unlinked()
        if not linked:
            return 0
        active = {s.leaf: s.active_s for s in await self._streams.sources() if s.leaf}
        done = 0
        for leaf in sorted(linked):
            pacer = self._pacers.setdefault(leaf, Pacer(confirm=CONFIRM_S))
            # A leaf missing from HIVE's sources had a restart fail half-way: it heals it.
            seen = active.get(leaf)
            if leaf in active and not stalled(seen):
                pacer.healthy()
                continue
            if not pacer.due(now):
                continue
            async with self._lock:
                await self._streams.restart_source(self._hub, leaf)
            pacer.restarted(now)
            self.restarts += 1
            done += 1
            log.info("hive.source_stalled", leaf=leaf, active_s=seen, restarts=self.restarts)
        return done


class LinkWatcher:
    """Leaf side: says hello every `interval`; recreates the mirror when it stalls behind."""

    def __init__(
        self, nc: Any, streams: Streams, leaf: str, hub: str, interval: float = HELLO_S
    ) -> None:
        self._nc = nc
        self._streams = streams
        self._leaf = leaf
        self._hub = hub
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._check: asyncio.Task[None] | None = None
        self._pacer = Pacer(confirm=CONFIRM_S)
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
                self._pacer.unlinked()
                await asyncio.sleep(self._interval)
                continue
            if "error" in reply:
                log.warning("link.refused", reason=reply["error"])
            else:
                if not self.linked:
                    self.linked = True
                    log.info("link.up", hub=self._hub)
                if self._check is None or self._check.done():  # never blocks the hellos
                    self._check = asyncio.create_task(self._checked(reply["hive_last_seq"]))
            await asyncio.sleep(self._interval)

    async def _checked(self, hub_last: int) -> None:
        try:
            await self.check(hub_last)
        except Exception as exc:  # e.g. our own server restarting: the next hello
            log.debug("link.check_failed", error=str(exc))

    async def check(self, hub_last: int) -> bool:
        """With the link up and the hub's HIVE at `hub_last`: recreate the mirror if it is
        stalled behind it (when the pacer allows); True if it was recreated."""
        state = await self._streams.mirror_state()
        if state is None:
            return False
        if not stalled(state.active_s):
            self._pacer.healthy()
            return False
        now = time.monotonic()
        if not self._pacer.due(now) or state.last_seq >= hub_last:
            return False
        await self._streams.restart_mirror(self._leaf, self._hub)
        self._pacer.restarted(now)
        self.mirror_restarts += 1
        log.info(
            "link.mirror_stalled",
            behind=hub_last - state.last_seq,
            active_s=state.active_s,
            restarts=self.mirror_restarts,
        )
        return True
