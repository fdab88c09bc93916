"""Knowledge commands: ingest files and directories; search their chunks."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from hivebrain.app.chunking import DEFAULT_OVERLAP, DEFAULT_SIZE
from hivebrain.app.connection import open_brain
from hivebrain.app.documents import DEFAULT_MAX_BYTES, find_files
from hivebrain.app.ingest import Ingester, IngestOptions, IngestSummary
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings

#: A progress bar is drawn (on a terminal) from this many files on.
PROGRESS_FROM_FILES = 50


def _summary_line(data: dict[str, Any]) -> str:
    line = (
        f"{data['seen']} files seen: {data['ingested']} ingested, {data['unchanged']} unchanged, "
        f"{data['skipped']} skipped"
    )
    if data["removed"]:
        line += f", {data['removed']} removed"
    line += f"; {data['chunks']} chunks published in {data['seconds']:.2f}s"
    if not data["applied"]:
        line += "; the node will apply them when it runs"
    return line


@contextmanager
def _progress(files: int) -> Iterator[Callable[[Path], None] | None]:
    if files < PROGRESS_FROM_FILES or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=files, label="ingesting", file=sys.stderr) as bar:
        yield lambda _path: bar.update(1)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--max-bytes",
    type=click.IntRange(1),
    default=DEFAULT_MAX_BYTES,
    show_default=True,
    help="Skip files larger than this.",
)
@click.option("--chunk-size", type=click.IntRange(1), default=DEFAULT_SIZE, show_default=True)
@click.option("--overlap", type=click.IntRange(0), default=DEFAULT_OVERLAP, show_default=True)
@click.option(
    "--prune",
    is_flag=True,
    help="Remove documents under the given directories whose files were not found.",
)
@pass_settings
def ingest(
    settings: Settings,
    paths: tuple[Path, ...],
    max_bytes: int,
    chunk_size: int,
    overlap: int,
    prune: bool,
) -> None:
    """Ingest files and directories (markdown, text, source code) as searchable knowledge.

    Directories are walked recursively, passing over hidden files and directories, .git,
    .venv, node_modules, __pycache__, binaries and files larger than --max-bytes. A file whose
    content the node already holds publishes nothing; a changed one replaces its old chunks.
    """
    options = IngestOptions(max_bytes, chunk_size, overlap, prune)
    found = find_files(paths)  # a missing path fails here, before anything is published

    async def go() -> IngestSummary:
        async with open_brain(settings) as brain:
            ingester = Ingester(brain, options)
            try:
                with _progress(len(found.files)) as on_file:
                    return await ingester.run(found, on_file)
            finally:
                ingester.close()

    emit(settings, run(go()).as_dict(), _summary_line)
