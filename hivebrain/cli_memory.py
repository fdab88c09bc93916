"""Memory commands: remember, recall, forget, edit."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any

import click

from hivebrain.events.memory import SPACES, MemoryStored
from hivebrain.projections.store import ProjectionStore

from .brain import Written
from .cli import cli, emit, pass_settings, run
from .cli_support import open_brain
from .config import Settings
from .errors import ConfigError


def _written(w: Written) -> dict[str, Any]:
    return {
        "id": w.event.entity,
        "event_id": w.event.event_id,
        "type": w.event.type,
        "lamport": w.event.lamport,
        "stream": w.ack.stream,
        "seq": w.ack.seq,
        "applied": w.applied,
    }


def _say(verb: str) -> Any:
    def text(data: dict[str, Any]) -> str:
        line = f"{verb} {data['id']} ({data['stream']} #{data['seq']})"
        if not data["applied"]:
            line += "; the node will apply it when it runs"
        return line

    return text


@cli.command()
@click.argument("text", required=False)
@click.option("--agent", default="default", show_default=True)
@click.option("--space", type=click.Choice(SPACES), default="long_term", show_default=True)
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--source", default="cli", show_default=True)
@click.option("--confidence", type=click.FloatRange(0, 1), default=1.0, show_default=True)
@click.option("--user", "user_message", help="A conversation turn: the user's message...")
@click.option("--response", help="...and the bot's response.")
@click.option("--session", help="The conversation session of the turn.")
@pass_settings
def remember(settings: Settings, /, text: str | None, **fields: Any) -> None:
    """Store a memory (TEXT, '-' for stdin, or --user with --response)."""
    if text == "-":
        text = sys.stdin.read().strip()
    if text is None and not (fields["user_message"] and fields["response"]):
        raise ConfigError("give the memory's TEXT, or both --user and --response")
    fields["tags"] = tuple(fields["tags"])
    payload = MemoryStored(text=text or None, **fields)

    async def go() -> Written:
        async with open_brain(settings) as brain:
            return await brain.remember(payload)

    emit(settings, _written(run(go())), _say("remembered"))


@cli.command()
@click.argument("query")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--agent")
@click.option("--space", type=click.Choice(SPACES))
@click.option("--tag", "tags", multiple=True, help="Only memories with this tag (repeatable).")
@click.option("--from-node", "node", help="Only memories written on this node.")
@click.option("--since", type=float, help="Unix time: only memories written after it.")
@click.option("--until", type=float, help="Unix time: only memories written before it.")
@pass_settings
def recall(settings: Settings, /, query: str, **filters: Any) -> None:
    """Find memories by keywords (BM25 ranking)."""
    if not query.strip():
        raise ConfigError("the query is empty")
    store = ProjectionStore(settings.db_path)
    try:
        hits = store.search_memories(
            query,
            limit=filters["limit"],
            agent=filters["agent"],
            space=filters["space"],
            tags=filters["tags"],
            node=filters["node"],
            since=filters["since"],
            until=filters["until"],
        )
    finally:
        store.close()
    rows = [asdict(hit) for hit in hits]

    def text(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "no memory matches"
        lines = []
        for r in rows:
            tags = f"  #{' #'.join(r['tags'])}" if r["tags"] else ""
            lines.append(
                f"{r['score']:7.3f}  {r['id']}  [{r['agent']}/{r['space']}] {r['text']}{tags}"
            )
        return "\n".join(lines)

    emit(settings, rows, text)


@cli.command()
@click.argument("memory_id")
@click.option("--reason", default="")
@pass_settings
def forget(settings: Settings, memory_id: str, reason: str) -> None:
    """Forget a memory (a tombstone event; the history stays in the log)."""

    async def go() -> Written:
        async with open_brain(settings) as brain:
            return await brain.forget(memory_id, reason)

    emit(settings, _written(run(go())), _say("forgot"))


@cli.command()
@click.argument("memory_id")
@click.option("--text", help="The new text.")
@click.option("--tag", "tag", multiple=True, help="Add a tag (repeatable).")
@click.option("--untag", "untag", multiple=True, help="Remove a tag (repeatable).")
@pass_settings
def edit(
    settings: Settings,
    memory_id: str,
    text: str | None,
    tag: tuple[str, ...],
    untag: tuple[str, ...],
) -> None:
    """Edit a memory's text or tags, on top of the version this node sees."""

    async def go() -> Written:
        async with open_brain(settings) as brain:
            return await brain.edit(memory_id, text=text, tag=tag, untag=untag)

    emit(settings, _written(run(go())), _say("edited"))
