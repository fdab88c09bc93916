"""The homelab: `nodes.toml` loaded into frozen models.

    [hub]                         where leaves find the hub
    name, client_url, leafnode_url, no_advertise

    [[nodes]]                     one block per node (exactly one with role = "hub")
    name, role, tier, capabilities, specialization, location, actors, ollama_url, models,
    sensors, host, client_port, leafnode_port, [nodes.embedder] (see embedding/config.py)

Every mistake in the file becomes one `ConfigError` line, `path:line: what is wrong`. tomllib
reports no positions for keys, so the line is found in the raw text (`_Layout`): the Nth
`[[nodes]]` block, then the `key =` line inside it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hivebrain.embedding.config import EmbedderConfig
from hivebrain.errors import ConfigError
from hivebrain.events.device import Tier
from hivebrain.events.envelope import NODE_RE

Role = Literal["hub", "leaf"]
M = TypeVar("M", bound=BaseModel)
NAME_RULE = "lowercase letters, digits, '-' and '_' (at most 63, starting with a letter or digit)"
CLIENT_SCHEMES = ("nats", "tls")
LEAFNODE_SCHEMES = ("nats-leaf", "nats", "tls")
DEFAULT_LEAFNODE_PORT = 7422


def _check_name(value: str) -> str:
    if not NODE_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a node name: use {NAME_RULE}")
    return value


def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{value!r} is not a URL like {schemes[0]}://host:port")
    if parts.username or parts.password:
        raise ValueError(f"{value!r} carries credentials: they come from the creds directory")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    return value


class HubAddress(BaseModel):
    """Table `[hub]`: how clients and leaves reach the hub."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    client_url: str
    leafnode_url: str
    #: The hub does not tell leaves its own leafnode URLs, so they only ever dial
    #: `leafnode_url` (needed when that address is a proxy or a NAT in front of the hub).
    no_advertise: bool = False

    _name = field_validator("name")(_check_name)

    @field_validator("client_url")
    @classmethod
    def _client_url(cls, value: str) -> str:
        return _check_url(value, CLIENT_SCHEMES)

    @field_validator("leafnode_url")
    @classmethod
    def _leafnode_url(cls, value: str) -> str:
        return _check_url(value, LEAFNODE_SCHEMES)

    @property
    def leafnode_host(self) -> str:
        host = urlsplit(self.leafnode_url).hostname or ""
        return f"[{host}]" if ":" in host else host

    @property
    def leafnode_port(self) -> int:
        return urlsplit(self.leafnode_url).port or DEFAULT_LEAFNODE_PORT

    @property
    def leafnode_scheme(self) -> str:
        return urlsplit(self.leafnode_url).scheme


class NodeSpec(BaseModel):
    """One `[[nodes]]` block. `host`/`client_port`: where its nats-server listens for clients;
    `leafnode_port`: where the hub listens for leaves (unused on a leaf)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    role: Role
    tier: Tier
    capabilities: tuple[str, ...] = ()
    specialization: str = ""
    location: str = ""
    actors: tuple[str, ...] = ()
    embedder: EmbedderConfig | None = None
    ollama_url: str | None = None
    models: tuple[str, ...] = ()
    sensors: tuple[str, ...] = ()
    client_port: int = Field(default=4222, ge=1, le=65535)
    leafnode_port: int = Field(default=DEFAULT_LEAFNODE_PORT, ge=1, le=65535)
    host: str = Field(default="127.0.0.1", min_length=1)

    _name = field_validator("name")(_check_name)

    def embedder_config(self) -> EmbedderConfig | None:
        """What this node embeds with: its `[nodes.embedder]` table (an Ollama one defaults to
        the node's `ollama_url`), else the local model when it runs the embedder actor, else
        nothing (recall on this node then uses keywords only)."""
        config = self.embedder
        if config is None and "embedder" in self.actors:
            config = EmbedderConfig()
        if config is not None and config.backend == "ollama" and config.url is None:
            config = config.model_copy(update={"url": self.ollama_url})
        return config


class Homelab(BaseModel):
    """The hub's address and every node; exactly one node is the hub."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hub: HubAddress
    nodes: tuple[NodeSpec, ...]

    @model_validator(mode="after")
    def _one_hub(self) -> Homelab:
        problem = _topology_problem(self.hub.name, [(n.name, n.role) for n in self.nodes])
        if problem:
            raise ValueError(problem[1])
        return self

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        known = ", ".join(n.name for n in self.nodes)
        raise ConfigError(f"unknown node {name!r} (known: {known})")

    @property
    def hub_node(self) -> NodeSpec:
        return self.node(self.hub.name)

    @property
    def leaves(self) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.nodes if n.role == "leaf")


def _topology_problem(hub_name: str, nodes: list[tuple[str, str]]) -> tuple[int, str] | None:
    """(index of the offending node or -1, message) when names or hub roles do not add up."""
    seen: set[str] = set()
    for i, (name, _) in enumerate(nodes):
        if name in seen:
            return i, f"duplicate node name {name!r}"
        seen.add(name)
    hubs = [i for i, (_, role) in enumerate(nodes) if role == "hub"]
    if not hubs:
        return -1, 'no node has role = "hub"'
    if len(hubs) > 1:
        first, second = nodes[hubs[0]][0], nodes[hubs[1]][0]
        return hubs[1], f"more than one hub: {first!r} and {second!r}"
    if nodes[hubs[0]][0] != hub_name:
        actual = nodes[hubs[0]][0]
        return -2, f'[hub] name {hub_name!r} is not the node with role = "hub" ({actual!r})'
    return None


# --------------------------------------------------------------------------- line numbers

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"'-]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*(["']?)([A-Za-z0-9_-]+)\1\s*[.=]""")


@dataclass
class _Block:
    header: str | None  # "hub", "nodes" or None before the first header
    line: int
    keys: dict[str, int] = field(default_factory=dict)


@dataclass
class _Layout:
    """Where tables and keys start in the raw text (1-based lines)."""

    blocks: list[_Block]

    @classmethod
    def scan(cls, text: str) -> _Layout:
        blocks = [_Block(None, 1)]
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                blocks.append(_Block(header.group(2).strip("\"'"), number))
                continue
            key = _KEY.match(line)
            if key:
                blocks[-1].keys.setdefault(key.group(2), number)
        return cls(blocks)

    def table(self, name: str, index: int = 0) -> _Block | None:
        found = [b for b in self.blocks if b.header == name]
        return found[index] if index < len(found) else None

    def line(self, table: str | None, key: str | None = None, index: int = 0) -> int:
        block = self.blocks[0] if table is None else self.table(table, index)
        if block is None:
            return 1
        if key is None:
            return block.line
        if table is None and key not in block.keys:
            sub = self.table(key)  # a top-level key written as its own [table]
            return sub.line if sub else 1
        return block.keys.get(key, block.line)


# --------------------------------------------------------------------------- loading


def load_homelab(path: str | Path) -> Homelab:
    """Read and check `nodes.toml`; any problem is one ConfigError line `path:line: ...`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_homelab(text, str(path))


def parse_homelab(text: str, source: str = "nodes.toml") -> Homelab:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_error(source, text, str(exc))) from None
    layout = _Layout.scan(text)

    def fail(line: int, message: str) -> ConfigError:
        return ConfigError(f"{source}:{line}: {message}")

    for key in data:
        if key not in ("hub", "nodes"):
            message = f"unknown key {key!r} (expected [hub] and [[nodes]])"
            raise fail(layout.line(None, key), message)
    hub_raw = data.get("hub")
    if not isinstance(hub_raw, dict):
        where = layout.line(None, "hub") if "hub" in data else 1
        raise fail(where, "missing [hub] table (name, client_url, leafnode_url)")
    nodes_raw = data.get("nodes", [])
    if not isinstance(nodes_raw, list) or not all(isinstance(n, dict) for n in nodes_raw):
        raise fail(layout.line(None, "nodes"), "nodes must be [[nodes]] tables")

    hub = _validate(HubAddress, hub_raw, "in [hub]", lambda k: layout.line("hub", k), fail)
    nodes: list[NodeSpec] = []
    for i, raw in enumerate(nodes_raw):
        label = raw.get("name") if isinstance(raw.get("name"), str) else f"#{i + 1}"

        def line_of(key: str | None, i: int = i) -> int:
            return layout.line("nodes", key, index=i)

        nodes.append(_validate(NodeSpec, raw, f"in node {label!r}", line_of, fail))

    problem = _topology_problem(hub.name, [(n.name, n.role) for n in nodes])
    if problem:
        index, message = problem
        if index == -2:
            line = layout.line("hub", "name")
        elif index == -1:
            line = layout.line("nodes") if nodes else 1
        else:
            key = "name" if message.startswith("duplicate") else "role"
            line = layout.line("nodes", key, index=index)
        raise fail(line, message)
    return Homelab(hub=hub, nodes=tuple(nodes))


def _validate(
    model: type[M],
    raw: Mapping[str, Any],
    where: str,
    line_of: Callable[[str | None], int],
    fail: Callable[[int, str], ConfigError],
) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # an unknown key first: `tierr = ...` is a typo, not a missing `tier`
        error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        key = str(error["loc"][0]) if error["loc"] else None
        message = str(error["msg"]).removeprefix("Value error, ").replace("\n", " ")
        if error["type"] == "extra_forbidden":
            raise fail(line_of(key), f"unknown key {key!r} {where}") from None
        if error["type"] == "missing":
            raise fail(line_of(None), f"missing key {key!r} {where}") from None
        raise fail(line_of(key), f"invalid {key!r} {where}: {message}") from None


def _syntax_error(source: str, text: str, message: str) -> str:
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if match:
        reason = message[: match.start()]
        return f"{source}:{match.group(1)}: invalid TOML: {reason} (column {match.group(2)})"
    reason = message.removesuffix(" (at end of document)")
    return f"{source}:{max(1, len(text.splitlines()))}: invalid TOML: {reason} (at end of file)"
