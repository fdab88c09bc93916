"""Working-memory consolidation: old or surplus `working` memories move to `long_term` (or
`archive`) with `memory.moved` events that say why; nothing is deleted. What moves is planned
by `hivebrain.projections.consolidation_queries`; any node can run it, and a repeated move is
harmless (the space is last-writer-wins).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from hivebrain.app.brain import Brain
from hivebrain.events.memory import MemoryMoved
from hivebrain.projections.consolidation_queries import Move
from hivebrain.transport.publisher import Ack


@dataclass
class ConsolidationSummary:
    moved: int = 0
    applied: bool = True


async def publish_moves(brain: Brain, moves: Sequence[Move]) -> ConsolidationSummary:
    """Publish one `memory.moved` per move (acks awaited together), then wait for the local
    projection to apply the last."""
    summary = ConsolidationSummary()
    futures: list[asyncio.Future[Ack]] = []
    for move in moves:
        payload = MemoryMoved(space=move.to, from_space="working", reason=move.reason)
        _, ack = await brain.writer.send(payload, entity=move.memory)
        futures.append(ack)
    acks = await asyncio.gather(*futures)
    summary.moved = len(acks)
    if acks:
        last = max(acks, key=lambda a: a.seq)
        summary.applied = await brain.wait_applied(last, timeout=5.0 + len(acks) / 500)
    return summary
