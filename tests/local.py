"""Settings for an in-process node in a test: a data directory, a node name, a free port for
its embedded nats-server, and nothing read from the environment."""

from __future__ import annotations

from pathlib import Path

from hivebrain.config import Settings, load_settings
from hivebrain.transport.server import free_port


def local_settings(home: Path, node: str = "n1", port: int | None = None) -> Settings:
    return load_settings(
        data_dir=str(home),
        node=node,
        nats_url=None,
        port=free_port() if port is None else port,
        nats_binary=None,
        json_output=False,
        env={},
    )
