"""`hivebrain recall`: memories, chunks and observations by meaning and keywords."""

from __future__ import annotations

from typing import Any

import click

from hivebrain.cli.interactions import instrument
from hivebrain.cli.knowledge import excerpt
from hivebrain.cli.support import emit, pass_settings, run
from hivebrain.config import Settings
from hivebrain.embedding import query_vector
from hivebrain.errors import ConfigError
from hivebrain.events.memory import SPACES
from hivebrain.projections.store import ProjectionStore
from hivebrain.projections.vectors import KINDS


def _hit_line(hit: dict[str, Any], query: str) -> str:
    """One line of `recall` output: score, kind, where the hit comes from, its text."""
    head = f"{hit['score']:7.3f}  {hit['kind']:<11}  {hit['origin']}  "
    if hit["kind"] == "memory":
        tags = f"  #{' #'.join(hit['tags'])}" if hit["tags"] else ""
        return f"{head}[{hit['agent']}/{hit['space']}] {hit['text']}{tags}"
    if hit["kind"] == "knowledge":
        return head + excerpt(hit["text"], query, width=120)
    return f"{head}[{hit['observation_kind']}] {' '.join(hit['text'].split())}"


@click.command()
@click.argument("query")
@click.option(
    "--hybrid",
    "mode",
    flag_value="hybrid",
    default=True,
    help="Keywords and vectors fused by rank (the default).",
)
@click.option("--keyword", "mode", flag_value="keyword", help="Keywords only (BM25).")
@click.option("--vector", "mode", flag_value="vector", help="Vectors only.")
@click.option(
    "--type",
    "kinds",
    type=click.Choice(KINDS),
    multiple=True,
    help="Only hits of this kind (repeatable; default: all).",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--agent", help="Only memories of this agent.")
@click.option("--space", type=click.Choice(SPACES), help="Only memories in this space.")
@click.option("--tag", "tags", multiple=True, help="Only memories with this tag (repeatable).")
@click.option("--from-node", "node", help="Only hits written on this node.")
@click.option("--since", type=float, help="Unix time: only hits written at or after it.")
@click.option("--until", type=float, help="Unix time: only hits written before it.")
@click.option("--all-agents", is_flag=True, help="Every agent's memories.")
@pass_settings
def recall(settings: Settings, /, query: str, **filters: Any) -> None:
    """Find memories, document chunks and observations by keywords and meaning (reciprocal
    rank fusion of BM25 and vectors). --space and --tag apply to memories only, so with
    either only memories match; --agent says whose memories match."""
    if not query.strip():
        raise ConfigError("the query is empty")
    mode = filters.pop("mode")
    found, why = (None, "") if mode == "keyword" else run(query_vector(settings, query))
    store = ProjectionStore(settings.db_path)
    try:
        result = store.recall(
            query,
            query_vector=found[1] if found else None,
            model=found[0] if found else None,
            mode=mode,
            limit=filters["limit"],
            agent=filters["agent"],
            space=filters["space"],
            tags=filters["tags"],
            node=filters["node"],
            since=filters["since"],
            until=filters["until"],
            all_agents=filters["all_agents"],
            kinds=filters["kinds"] or KINDS,
        )
    finally:
        store.close()
    if why:
        click.echo(why, err=True)
    elif result.note:
        click.echo(result.note, err=True)
    rows = [hit.as_dict() for hit in result.hits]

    def text(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "nothing matches"
        return "\n".join(_hit_line(r, query) for r in rows)

    emit(settings, rows, text)


instrument(recall, "cli.recall")
