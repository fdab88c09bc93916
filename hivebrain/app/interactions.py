"""The interaction log (the learning queue): recalls and stores made through the MCP server or
the CLI, written as `interaction.logged` events with secrets redacted first.

An `Interaction` is what happened: the tool, the query (or the stored text), a short summary
of the result, the outcome, the latency, the agent and session. `InteractionLog.record`
redacts every text field (`redaction.redact`), cuts it to a bounded length and publishes the
event; the author node is the event's `node`. `record_soon` does the same in the background,
so the caller's answer is not held up by the write; `flush` waits for those still in flight
(a failed write is logged, never raised: the log must not break the tool it observes).

Recording is on by default for the MCP server and off for the CLI (`--log-interaction`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from hivebrain.app.redaction import redact_text
from hivebrain.events.interaction import InteractionLogged, Outcome
from hivebrain.transport.event_writer import Publish

log = structlog.get_logger(__name__)

MAX_QUERY = 2000  # characters kept of a query or stored text
MAX_RESPONSE = 1000  # characters kept of a result summary


@dataclass(frozen=True, slots=True)
class Interaction:
    tool: str
    query: str
    response: str = ""  # a short summary of the result
    outcome: Outcome = "success"
    latency_ms: float = 0.0
    agent: str = "default"
    session: str | None = None
    feedback: str = ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def logged_event(interaction: Interaction) -> InteractionLogged:
    """The event's payload: every text redacted, then bounded."""
    return InteractionLogged(
        query=_cut(redact_text(interaction.query), MAX_QUERY),
        response=_cut(redact_text(interaction.response), MAX_RESPONSE),
        tool=interaction.tool,
        outcome=interaction.outcome,
        feedback=_cut(redact_text(interaction.feedback), MAX_RESPONSE),
        latency_ms=max(0.0, round(interaction.latency_ms, 3)),
        agent=interaction.agent or "default",
        session=None if interaction.session is None else redact_text(interaction.session),
    )


class InteractionLog:
    """Writes interactions through `publish` (e.g. `Brain.publish_acked`) when `enabled`."""

    def __init__(self, publish: Publish, *, enabled: bool = True) -> None:
        self._publish = publish
        self.enabled = enabled
        self._pending: set[asyncio.Task[None]] = set()
        self.written = 0
        self.failed = 0

    async def record(self, interaction: Interaction) -> None:
        if not self.enabled:
            return
        try:
            await self._publish(logged_event(interaction))
            self.written += 1
        except Exception as exc:  # the tool's answer stands; the log says what was lost
            self.failed += 1
            log.warning("interaction.not_logged", tool=interaction.tool, error=str(exc))

    def record_soon(self, interaction: Interaction) -> None:
        """Record in the background (see `flush`)."""
        if not self.enabled:
            return
        task = asyncio.get_running_loop().create_task(self.record(interaction))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def summarize_hits(ids_and_texts: list[tuple[str, str]], width: int = 80) -> str:
    """`3 hits: <id> <text>; ...` for the log, each text cut to `width`."""
    if not ids_and_texts:
        return "no hits"
    parts = [f"{key} {_cut(' '.join(text.split()), width)}" for key, text in ids_and_texts]
    plural = "hit" if len(parts) == 1 else "hits"
    return f"{len(parts)} {plural}: " + "; ".join(parts)
