"""Loopback-only harness for the leaf-node spike: nats-server processes, configs, a TCP proxy.

Everything binds 127.0.0.1 on free ports, with store dirs under a temporary directory.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.js.api import (
    ExternalStream,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin" / "nats-server"
HOST = "127.0.0.1"
DUP_WINDOW_S = 120.0


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free 127.0.0.1 port, never the same one twice in this process (many topologies run at once)."""
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def pw(user: str) -> str:
    return f"{user}-secret"


# --------------------------------------------------------------------------- permissions
# Client permissions of a node's own user on its OWN server (what the node's processes may do).
def client_perms(node: str) -> str:
    return f"""{{
        publish: {{
          allow: ["hive.{node}.>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "_INBOX.>"]
        }}
        subscribe: {{ allow: ["hive.>", "_INBOX.>"] }}
      }}"""


# Permissions of leaf <node>'s user on the HUB (the user its leaf remote authenticates as).
# For a leaf connection the hub enforces them from the leaf's point of view:
#   publish   = what the leaf may send into the hub,
#   subscribe = what the hub may send to the leaf (interest the leaf may register).
def leaf_link_perms(node: str, strict: bool = True) -> str:
    if not strict:
        return "{ publish: \">\", subscribe: \">\" }"
    return f"""{{
        publish: {{
          allow: [
            "hive.{node}.>",
            "$JS.hub.API.CONSUMER.CREATE.HIVE",
            "$JS.hub.API.CONSUMER.CREATE.HIVE.>",
            "$JS.hub.API.CONSUMER.DELETE.HIVE.>",
            "$JS.S.{node}.>",
            "$JSC.R.>",
            "$JS.FC.>"
          ]
        }}
        subscribe: {{
          allow: [
            "$JS.{node}.API.CONSUMER.CREATE.EVENTS.>",
            "$JS.{node}.API.CONSUMER.DELETE.EVENTS.>",
            "$JS.M.{node}.>",
            "$JSC.R.>",
            "$JS.FC.>"
          ]
        }}
      }}"""


@dataclass
class Topology:
    root: Path
    leaves: list[str] = field(default_factory=lambda: ["leaf1", "leaf2"])
    strict: bool = True
    unbound: set[str] = field(default_factory=set)  # leaves whose remote omits `account: HIVE`
    trace: bool = False

    def __post_init__(self) -> None:
        self.ports = {n: free_port() for n in ["hub", *self.leaves]}
        self.http = {n: free_port() for n in ["hub", *self.leaves]}
        self.leaf_port = free_port()
        self.proxies: dict[str, Proxy] = {n: Proxy(self.leaf_port) for n in self.leaves}
        self.servers: dict[str, Server] = {}
        for n in ["hub", *self.leaves]:
            self.servers[n] = Server(n, self.root / n, self.render(n))

    def url(self, node: str, user: str | None = None) -> str:
        user = user or node
        return f"nats://{user}:{pw(user)}@{HOST}:{self.ports[node]}"

    def render(self, node: str) -> str:
        store = self.root / node / "js"
        common = f"""server_name: {node}
listen: {HOST}:{self.ports[node]}
http: "{HOST}:{self.http[node]}"
{"trace: true" if self.trace else ""}
jetstream {{
  store_dir: "{store}"
  domain: {node}
}}
system_account: SYS
"""
        if node == "hub":
            users = [f"{{ user: hub, password: {pw('hub')}, permissions: {client_perms('hub')}, allowed_connection_types: [STANDARD] }}"]
            users += [
                f"{{ user: {n}, password: {pw(n)}, permissions: {leaf_link_perms(n, self.strict)}, allowed_connection_types: [LEAFNODE] }}"
                for n in self.leaves
            ]
            users.append(f"{{ user: admin, password: {pw('admin')} }}")
            return common + f"""leafnodes {{
  listen: {HOST}:{self.leaf_port}
}}
accounts {{
  SYS {{ users: [ {{ user: sys, password: {pw('sys')} }} ] }}
  HIVE {{
    jetstream: enabled
    users: [
      {(chr(10) + '      ').join(users)}
    ]
  }}
}}
"""
        bind = "" if node in self.unbound else "account: HIVE"
        return common + f"""leafnodes {{
  reconnect: "1s"
  remotes: [
    {{ url: "nats-leaf://{node}:{pw(node)}@{HOST}:{self.proxies[node].port}", {bind} }}
  ]
}}
accounts {{
  SYS {{ users: [ {{ user: sys, password: {pw('sys')} }} ] }}
  HIVE {{
    jetstream: enabled
    users: [
      {{ user: {node}, password: {pw(node)}, permissions: {client_perms(node)} }}
      {{ user: admin, password: {pw('admin')} }}
    ]
  }}
}}
"""

    async def leafz(self, node: str = "hub") -> dict:
        import json, urllib.request
        def get() -> dict:
            with urllib.request.urlopen(f"http://{HOST}:{self.http[node]}/leafz?subs=0", timeout=3) as r:
                return json.loads(r.read())
        return await asyncio.to_thread(get)

    async def start(self) -> None:
        for p in self.proxies.values():
            await p.open()
        for s in self.servers.values():
            await s.start()

    async def stop(self) -> None:
        for s in self.servers.values():
            s.kill()
        for p in self.proxies.values():
            await p.close()


# --------------------------------------------------------------------------- server process
LIVE: set["Server"] = set()


@atexit.register
def _kill_all() -> None:
    for s in list(LIVE):
        s.kill()


class Server:
    def __init__(self, name: str, root: Path, conf: str) -> None:
        self.name = name
        self.root = root
        self.conf = conf
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = int(conf.split("listen: ")[1].split("\n")[0].split(":")[1])

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    async def start(self, timeout: float = 15.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "server.conf").write_text(self.conf)
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [str(BIN), "-c", str(self.root / "server.conf")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                _, w = await asyncio.open_connection(HOST, self.port)
                w.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        LIVE.discard(self)

    async def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 10)
            except TimeoutError:
                self.kill()
        self.proc = None
        LIVE.discard(self)

    def grep(self, needle: str) -> list[str]:
        try:
            return [l for l in self.log.read_text(errors="replace").splitlines() if needle in l]
        except OSError:
            return []


# --------------------------------------------------------------------------- TCP proxy
class Proxy:
    """127.0.0.1 TCP relay in front of the hub's leafnode port: close() cuts the link only."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._handle, HOST, self.port)

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            tr, tw = await asyncio.open_connection(HOST, self.target)
        except OSError:
            w.transport.abort()
            return
        self.writers |= {w, tw}

        async def pipe(a: asyncio.StreamReader, b: asyncio.StreamWriter) -> None:
            try:
                while data := await a.read(65536):
                    b.write(data)
                    await b.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                b.transport.abort()

        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pipe(r, tw), pipe(tr, w))
        self.writers -= {w, tw}

    async def close(self) -> None:
        if self.server:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()
        tasks, self.tasks = list(self.tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --------------------------------------------------------------------------- streams
def events_config(node: str) -> StreamConfig:
    return StreamConfig(
        name="EVENTS",
        subjects=[f"hive.{node}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=0,
        duplicate_window=DUP_WINDOW_S,
    )


def leaf_source(leaf: str, prefix: bool = True) -> StreamSource:
    return StreamSource(
        name="EVENTS",
        filter_subject=f"hive.{leaf}.>",
        external=ExternalStream(api=f"$JS.{leaf}.API", deliver=f"$JS.S.{leaf}" if prefix else None),
    )


def hub_hive_config(leaves: list[str]) -> StreamConfig:
    return StreamConfig(
        name="HIVE",
        subjects=None,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=0,
        duplicate_window=DUP_WINDOW_S,
        sources=[StreamSource(name="EVENTS", filter_subject="hive.hub.>")]
        + [leaf_source(l) for l in leaves],
    )


def leaf_hive_config(leaf: str, prefix: bool = True) -> StreamConfig:
    return StreamConfig(
        name="HIVE",
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=0,
        mirror=StreamSource(
            name="HIVE",
            external=ExternalStream(api="$JS.hub.API", deliver=f"$JS.M.{leaf}" if prefix else None),
        ),
    )


async def connect(url: str, errors: list[str] | None = None) -> nats.NATS:
    async def on_error(e: Exception) -> None:
        if errors is not None:
            errors.append(f"{type(e).__name__}: {e}")

    return await asyncio.wait_for(
        nats.connect(url, error_cb=on_error, allow_reconnect=True, max_reconnect_attempts=-1,
                     reconnect_time_wait=0.2, connect_timeout=3),
        10,
    )


async def wait_until(pred, timeout: float, step: float = 0.1) -> float | None:
    """Seconds until the async predicate holds, or None after timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with contextlib.suppress(Exception):
            if await pred():
                return time.monotonic() - t0
        await asyncio.sleep(step)
    return None
