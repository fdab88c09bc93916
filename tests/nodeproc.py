"""Helpers for tests that run hivebrain as a user does: the `hivebrain` console script in its own
process, on a temporary data directory and a free port."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")

HIVEBRAIN = Path(sys.executable).parent / "hivebrain"


def wait_until(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie nobody reaps counts as gone)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def positions(db: Path) -> dict[str, int]:
    """The projection's committed stream positions, read as another process would."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(db, timeout=5.0)
    try:
        return dict(conn.execute("SELECT stream, seq FROM positions").fetchall())
    except sqlite3.OperationalError:  # the node has not created its tables yet
        return {}
    finally:
        conn.close()


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def one_clean_error(result: Result) -> str:
    """The failure was reported as one line on stderr, without a traceback."""
    assert "Traceback" not in result.err + result.out
    assert len(result.err_lines) == 1, f"expected one line on stderr, got: {result.err!r}"
    return result.err_lines[0]


class Cli:
    """Runs `hivebrain` commands against one data directory and port."""

    def __init__(self, home: Path, port: int, node: str = "n1") -> None:
        self.home = home
        self.port = port
        self.node = node
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HIVEBRAIN_")},
            "HIVEBRAIN_HOME": str(home),
            "HIVEBRAIN_NODE": node,
        }

    def argv(self, *args: str) -> list[str]:
        return [str(HIVEBRAIN), "--port", str(self.port), *args]

    def run(self, *args: str, stdin: str | None = None, timeout: float = 30.0) -> Result:
        proc = subprocess.run(
            self.argv(*args),
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.code == 0, f"hivebrain {' '.join(args)} exited {result.code}: {result.err}"
        return result.out


class NodeProcess:
    """`hivebrain up` in a subprocess; stdout goes to a file that is polled for its lines."""

    def __init__(self, cli: Cli, *up_options: str) -> None:
        self.up_options = up_options
        self.cli = cli
        self.log = cli.home.parent / f"up-{cli.port}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.server_pid: int | None = None

    @property
    def db(self) -> Path:
        return self.cli.home / "hivebrain.db"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self, timeout: float = 30.0) -> None:
        self.cli.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.cli.argv("up", *self.up_options),
                env=self.cli.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"hivebrain up exited {proc.returncode}: {self.output()}")
            return " is up: " in self.output()

        wait_until(up, "hivebrain up to print its 'is up' line", timeout)
        children = psutil.Process(proc.pid).children()
        servers = [c.pid for c in children if "nats-server" in c.name()]
        assert len(servers) == 1, f"expected one nats-server child, got {children}"
        self.server_pid = servers[0]

    def wait_released(self, timeout: float = 20.0) -> None:
        """Wait until the node's nats-server has exited and its port is free."""
        assert self.server_pid is not None
        server = self.server_pid
        wait_until(lambda: gone(server), f"nats-server {server} to exit", timeout)
        wait_until(
            lambda: not accepts_connections(self.cli.port), f"port {self.cli.port} free", timeout
        )

    def interrupt(self, timeout: float = 15.0) -> int:
        """Ctrl-C: returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        """Stop whatever still runs (for fixture teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.server_pid is not None and not gone(self.server_pid):
            os.kill(self.server_pid, signal.SIGKILL)
