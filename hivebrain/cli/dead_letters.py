"""`hivebrain dead-letters`: messages that could not be applied, with the reason."""

from __future__ import annotations

from dataclasses import asdict

import click

from hivebrain.cli.support import emit, pass_settings
from hivebrain.config import Settings
from hivebrain.projections.store import ProjectionStore


@click.command("dead-letters")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@pass_settings
def dead_letters(settings: Settings, limit: int) -> None:
    """Messages that could not be applied, with the reason."""
    store = ProjectionStore(settings.db_path)
    try:
        rows = [asdict(d) for d in store.dead_letters(limit)]
    finally:
        store.close()
    emit(
        settings,
        rows,
        lambda rs: (
            "\n".join(f"{r['stream']} #{r['seq']}: {r['reason']}" for r in rs) or "no dead letters"
        ),
    )
