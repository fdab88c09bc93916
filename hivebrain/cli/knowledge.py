"""`hivebrain knowledge`: search the ingested documents."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

import click

from hivebrain.cli.support import emit, pass_settings
from hivebrain.config import Settings
from hivebrain.errors import ConfigError
from hivebrain.projections.store import ProjectionStore


@click.group()
def knowledge() -> None:
    """Search the ingested documents."""


def excerpt(text: str, query: str, width: int = 160) -> str:
    """One line of `text` of about `width` characters, around the first query word found."""
    flat = " ".join(text.split())
    lowered = flat.lower()
    at = min(
        (i for w in re.findall(r"\w+", query.lower()) if (i := lowered.find(w)) >= 0), default=0
    )
    start = max(0, min(at - width // 3, len(flat) - width))
    out = flat[start : start + width]
    return ("..." if start > 0 else "") + out + ("..." if start + width < len(flat) else "")


@knowledge.command("search")
@click.argument("query")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@pass_settings
def knowledge_search(settings: Settings, query: str, limit: int) -> None:
    """Find chunks of ingested documents by keywords (BM25 ranking)."""
    if not query.strip():
        raise ConfigError("the query is empty")
    store = ProjectionStore(settings.db_path)
    try:
        hits = store.search_knowledge(query, limit=limit)
    finally:
        store.close()
    rows = [asdict(hit) for hit in hits]

    def text(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "no knowledge matches"
        lines = []
        for r in rows:
            where = f"chunk {r['chunk_index'] + 1}/{r['total_chunks']}"
            lines.append(f"{r['score']:7.3f}  {r['source']}  ({where})")
            lines.append(f"         {excerpt(r['text'], query)}")
        return "\n".join(lines)

    emit(settings, rows, text)
