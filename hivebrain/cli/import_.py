"""`import`: bring conversations from other tools into the brain."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import click

from hivebrain.app.chatlogs import ChatImporter, ImportSummary, find_chatlogs
from hivebrain.app.connection import open_brain
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings
from hivebrain.errors import ConfigError
from hivebrain.events.memory import SPACES, Space

#: A progress bar is drawn (on a terminal) from this many files on.
PROGRESS_FROM_FILES = 20


@click.group("import")
def import_() -> None:
    """Import conversations from files."""


@contextmanager
def _progress(files: int) -> Iterator[Callable[[], None] | None]:
    if files < PROGRESS_FROM_FILES or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=files, label="importing", file=sys.stderr) as bar:
        yield lambda: bar.update(1)


def _summary_line(d: dict[str, Any]) -> str:
    line = (
        f"{d['files']} chat logs read: {d['turns']} turns imported, {d['unchanged']} already "
        f"here, {d['interactions']} interactions logged"
    )
    if d["agents_created"]:
        line += f", {d['agents_created']} agents created"
    if d["malformed"]:
        line += f"; {len(d['malformed'])} files skipped"
    if not d["applied"]:
        line += "; the node will apply them when it runs"
    return line


@import_.command("chatlogs")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--agent", help="Import every turn as this agent's (name or uuid).")
@click.option(
    "--space",
    type=click.Choice(SPACES),
    default="long_term",
    show_default=True,
    help="The space of the imported turns.",
)
@pass_settings
def import_chatlogs(
    settings: Settings, paths: tuple[Path, ...], agent: str | None, space: str
) -> None:
    """Import chat-session JSON logs (id, title, messages with role, content, timestamp and
    agent) as conversation memories of their session, and as interactions for the learning
    queue. Directories are searched for *.json files. Importing a file again changes nothing.
    A file that is not a chat log is reported (one line each) and skipped; the exit code is
    non-zero only when no file could be imported."""
    files = find_chatlogs(paths)

    async def go() -> ImportSummary:
        async with open_brain(settings) as brain:
            importer = ChatImporter(brain, agent=agent, space=cast(Space, space))
            try:
                with _progress(len(files)) as step:
                    for path in files:
                        await importer.import_file(path)
                        if step is not None:
                            step()
                return await importer.finish()
            finally:
                importer.close()

    summary = run(go())
    for path, reason in summary.malformed:
        click.echo(f"skipped {path}: {reason}", err=True)
    if summary.files == 0:
        raise ConfigError(f"no chat log could be imported ({len(summary.malformed)} files skipped)")
    emit(settings, summary.as_dict(), _summary_line)
