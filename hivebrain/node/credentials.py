"""Per-node NATS secrets: one file `<dir>/<node>.json` = {"node": ..., "password": ...}.

Files are created 0600 in a 0700 directory and written atomically. Like ssh with a private key,
`load_credentials` refuses a file that its group or others may read. The password is a
`SecretStr`: it never shows in `repr()`, `str()` or logs; only `reveal()` returns it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from hivebrain.errors import ConfigError
from hivebrain.events.envelope import NODE_RE

PASSWORD_BYTES = 24
TOO_OPEN = 0o077  # any permission for group or others


class NodeCredentials(BaseModel):
    """The login of one node: its NATS user is its name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str = Field(pattern=NODE_RE.pattern)
    password: SecretStr

    @field_validator("password")
    @classmethod
    def _usable(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if len(secret) < 16:
            raise ValueError("password is shorter than 16 characters")
        if any(ord(c) < 0x20 or c == "\x7f" for c in secret):
            raise ValueError("password contains control characters")
        return value

    def reveal(self) -> str:
        return self.password.get_secret_value()

    @property
    def sys_password(self) -> SecretStr:
        """The password of this node's `sys` user (system account), derived from its own, so
        nothing else has to be stored and only the holder of the node's secret can compute it."""
        digest = hmac.new(self.reveal().encode(), b"hivebrain sys account", hashlib.sha256)
        return SecretStr(base64.urlsafe_b64encode(digest.digest()).decode().rstrip("="))


class WrittenFile(NamedTuple):
    node: str
    path: Path
    written: bool  # False: it existed and was kept


def credentials_path(directory: Path, node: str) -> Path:
    if not NODE_RE.fullmatch(node):
        raise ConfigError(f"invalid node name {node!r}")
    return directory / f"{node}.json"


def new_credentials(node: str) -> NodeCredentials:
    return NodeCredentials(node=node, password=SecretStr(secrets.token_urlsafe(PASSWORD_BYTES)))


def generate_credentials(
    directory: Path, nodes: Iterable[str], *, rotate: bool = False
) -> list[WrittenFile]:
    """A secret for each node that has none (every node with `rotate`)."""
    _make_private_dir(directory)
    results = []
    for node in nodes:
        path = credentials_path(directory, node)
        if path.exists() and not rotate:
            results.append(WrittenFile(node, path, False))
            continue
        write_credentials(directory, new_credentials(node))
        results.append(WrittenFile(node, path, True))
    return results


def write_credentials(directory: Path, creds: NodeCredentials) -> Path:
    """Atomically replace `<directory>/<node>.json`; the file is never readable by others."""
    _make_private_dir(directory)
    path = credentials_path(directory, creds.node)
    body = json.dumps({"node": creds.node, "password": creds.reveal()}).encode() + b"\n"
    tmp = directory / f".{creds.node}.json.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def load_credentials(directory: Path, node: str) -> NodeCredentials:
    path = credentials_path(directory, node)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise ConfigError(
            f"no credentials for node {node!r} at {path}: run `hivebrain creds generate`"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as src:
        mode = stat.S_IMODE(os.fstat(src.fileno()).st_mode)
        if mode & TOO_OPEN:
            raise ConfigError(
                f"{path}: permissions {mode:04o} are too open (others may read the secret); "
                f"chmod 600 {path}"
            )
        raw = src.read()
    try:
        data = json.loads(raw)
        creds = NodeCredentials.model_validate(data)
    except (ValueError, ValidationError) as exc:
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "not JSON"
        raise ConfigError(f"{path}: not a credentials file: {reason}") from None
    if creds.node != node:
        raise ConfigError(f"{path}: holds the credentials of {creds.node!r}, not {node!r}")
    return creds


def load_many(directory: Path, nodes: Iterable[str]) -> dict[str, NodeCredentials]:
    return {node: load_credentials(directory, node) for node in nodes}


def _make_private_dir(directory: Path) -> None:
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        directory.chmod(0o700)  # mkdir's mode is filtered by the umask; be exact
