"""Configuration, read once at the entry point and passed down.

Precedence: command-line option > environment (`HIVEBRAIN_*`) > the running node's runtime file
(`<data dir>/node.json`, written by `hivebrain up`) > defaults.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from hivebrain.embedding.config import EmbedderConfig
from hivebrain.events.clock import MAX_CLOCK_JUMP
from hivebrain.events.envelope import NODE_RE

from .errors import ConfigError

DEFAULT_PORT = 4222


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "hivebrain"


def default_node_name() -> str:
    name = re.sub(r"[^a-z0-9_-]+", "-", socket.gethostname().lower()).strip("-_")
    return (name or "node")[:63]


class Settings(BaseModel):
    """Everything a command needs to know about where it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    node: str = Field(pattern=NODE_RE.pattern)
    nats_url: str
    embedded: bool = True  # True: `up` starts nats-server itself; False: `--nats` given
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    nats_binary: str | None = None
    json_output: bool = False
    embedder: EmbedderConfig | None = None  # what the node embeds with; None: keywords only
    # A remote stamp further than this above the node's clock is dead-lettered.
    max_clock_jump: int = Field(default=MAX_CLOCK_JUMP, ge=1)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "hivebrain.db"

    @property
    def nats_dir(self) -> Path:
        return self.data_dir / "nats"

    @property
    def runtime_file(self) -> Path:
        return self.data_dir / "node.json"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "node.lock"


def read_runtime(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "node.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is unreadable: {exc}") from None
    return data if isinstance(data, dict) else {}


def redact(url: str) -> str:
    """A URL fit for logs and messages: any user:password in it replaced by ***."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def write_runtime(settings: Settings, nats_url: str, pid: int) -> None:
    """Tell later commands which node runs here and where its NATS server listens (the file
    is the owner's alone: a URL given with credentials keeps them)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.runtime_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        data: dict[str, Any] = {"node": settings.node, "nats_url": nats_url, "pid": pid}
        if settings.embedder is not None:
            data["embedder"] = settings.embedder.model_dump(mode="json")
        out.write(json.dumps(data))
    tmp.replace(settings.runtime_file)


def load_settings(
    *,
    data_dir: str | None,
    node: str | None,
    nats_url: str | None,
    port: int | None,
    nats_binary: str | None,
    json_output: bool,
    env: dict[str, str] | None = None,
) -> Settings:
    env = dict(os.environ) if env is None else env
    base = Path(data_dir or env.get("HIVEBRAIN_HOME") or default_data_dir()).expanduser()
    runtime = read_runtime(base)
    name = node or env.get("HIVEBRAIN_NODE") or runtime.get("node") or default_node_name()
    if not NODE_RE.match(name):
        raise ConfigError(
            f"invalid node name {name!r}: use lowercase letters, digits, '-' and '_' "
            "(at most 63, starting with a letter or digit)"
        )
    explicit_url = nats_url or env.get("HIVEBRAIN_NATS")
    port_given = port is not None
    port = DEFAULT_PORT if port is None else port
    if explicit_url and not re.match(r"^(nats|tls|ws|wss)://", explicit_url):
        raise ConfigError(f"invalid NATS URL {explicit_url!r}: expected nats://host:port")
    local = f"nats://127.0.0.1:{port}"
    url = explicit_url or (local if port_given else runtime.get("nats_url") or local)
    embedder = None
    if isinstance(runtime.get("embedder"), dict):
        try:
            embedder = EmbedderConfig.model_validate(runtime["embedder"])
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{base / 'node.json'}: bad embedder entry ({first})") from None
    jump = env.get("HIVEBRAIN_MAX_CLOCK_JUMP", "").replace("_", "")
    if jump and not (jump.isdigit() and int(jump) >= 1):
        raise ConfigError(f"HIVEBRAIN_MAX_CLOCK_JUMP must be a positive integer, got {jump!r}")
    return Settings(
        data_dir=base,
        node=name,
        nats_url=url,
        embedded=explicit_url is None,
        port=port,
        nats_binary=nats_binary or env.get("HIVEBRAIN_NATS_SERVER"),
        json_output=json_output,
        embedder=embedder,
        max_clock_jump=int(jump) if jump else MAX_CLOCK_JUMP,
    )
