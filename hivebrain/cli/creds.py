"""Credential commands: `hivebrain creds generate`."""

from __future__ import annotations

from pathlib import Path

import click

from hivebrain.cli.support import emit, pass_settings
from hivebrain.config import Settings
from hivebrain.node.credentials import WrittenFile, generate_credentials
from hivebrain.node.homelab import load_homelab


def default_creds_dir(settings: Settings) -> Path:
    return settings.data_dir / "creds"


@click.group()
def creds() -> None:
    """Per-node NATS passwords (one file per node, readable only by its owner)."""


@creds.command()
@click.option(
    "--config",
    "config_path",
    default="nodes.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The homelab file listing the nodes.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the files [<data dir>/creds].",
)
@click.option("--node", "only", help="Only this node (default: every node in the file).")
@click.option("--rotate", is_flag=True, help="Replace existing secrets with new ones.")
@pass_settings
def generate(
    settings: Settings, config_path: Path, out_dir: Path | None, only: str | None, rotate: bool
) -> None:
    """Write one secret per node to DIR/<node>.json (0600); existing files are kept.

    The hub needs every node's file; copy each leaf's own file to that leaf."""
    homelab = load_homelab(config_path)
    names = [homelab.node(only).name] if only else [n.name for n in homelab.nodes]
    directory = out_dir or default_creds_dir(settings)
    results = generate_credentials(directory, names, rotate=rotate)
    data = [{"node": r.node, "path": str(r.path), "written": r.written} for r in results]
    emit(settings, data, "\n".join(_line(r) for r in results))


def _line(result: WrittenFile) -> str:
    if result.written:
        return f"wrote {result.path}"
    return f"kept  {result.path} (exists; --rotate replaces it)"
