"""`hivebrain demo`: a hub and two leaves on this machine, one leaf cut off and reconnected."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from hivebrain.cli.support import pass_settings, run
from hivebrain.config import Settings
from hivebrain.demo.story import DemoFailed, run_demo


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the hive's files here (nodes.toml, creds, data) [a temporary directory, removed].",
)
@click.option(
    "--memories",
    "offline",
    type=click.IntRange(1, 100_000),
    default=200,
    show_default=True,
    help="Memories written on each side while the leaf is cut off.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1, 600),
    default=20.0,
    show_default=True,
    help="Seconds allowed to converge after the link returns.",
)
@pass_settings
def demo(settings: Settings, directory: Path | None, offline: int, timeout: float) -> None:
    """Run a hub and two leaves on 127.0.0.1 (real nats-servers, rendered configs and
    credentials), cut one leaf off, write on both sides, recall on the cut-off leaf, restore
    the link and check that every node ends with the same state. Exit 1 if it does not."""
    as_json = settings.json_output

    def say(line: str) -> None:
        click.echo(line, err=as_json)

    root = directory or Path(tempfile.mkdtemp(prefix="hivebrain-demo-"))
    summary: dict[str, Any]
    failure: str | None = None
    try:
        say(f"hivebrain demo: a hub and two leaves on 127.0.0.1, files in {root}")
        try:
            summary = run(
                run_demo(
                    root, say, offline=offline, timeout=timeout, nats_binary=settings.nats_binary
                )
            )
        except DemoFailed as exc:
            failure, summary = exc.args[0], exc.args[1]
            summary["error"] = failure
    finally:
        if directory is None:
            shutil.rmtree(root, ignore_errors=True)
    if as_json:
        click.echo(json.dumps(summary, default=str))
    if failure is not None:
        click.echo(f"demo FAILED: {failure}", err=True)
        sys.exit(1)
    say("demo OK: the cut-off leaf kept working and every node converged to the same state")
