"""Erasing a memory everywhere: the `memory.erased` event, and who has confirmed it.

The event names the memory and the interactions that held its text (found here, on the node
that erases: those whose query or response holds one of the memory's texts or its id), and
the sha256 of its text; never the text itself. Every node then does its part
(`hivebrain/node/eraser.py`) and confirms it.
"""

from __future__ import annotations

from typing import Any

from hivebrain.app.brain import Brain, Written
from hivebrain.errors import ConfigError, NotFound
from hivebrain.events.embedding import content_hash
from hivebrain.events.memory import MemoryErased
from hivebrain.projections.store import ProjectionStore


def _texts(store: ProjectionStore, memory_id: str) -> set[str]:
    row = store.memory(memory_id)
    texts = {t for t in (row.text, row.user_message, row.response) if t} if row else set()
    versions = store.connection.execute(
        "SELECT v.text FROM memory_versions v JOIN memories m ON m.mid = v.mid WHERE m.id = ?",
        (memory_id,),
    )
    texts.update(text for (text,) in versions if text)
    return texts


def interactions_holding(store: ProjectionStore, memory_id: str, texts: set[str]) -> list[str]:
    """The interactions whose query or response holds the memory's id or one of its texts."""
    found: set[str] = set()
    for needle in {memory_id, *texts}:
        rows = store.connection.execute(
            "SELECT entity FROM interactions WHERE instr(query, ?1) > 0 "
            "OR instr(coalesce(response, ''), ?1) > 0",
            (needle,),
        )
        found.update(entity for (entity,) in rows)
    return sorted(found)


async def erase(brain: Brain, memory_id: str) -> Written:
    """Publish the erase of a memory this node knows (forgotten ones included)."""
    store = brain.store
    if store.erasure(memory_id) is not None:
        raise ConfigError(
            f"memory {memory_id} is already erased (see: hivebrain erase --status {memory_id})"
        )
    row = store.memory(memory_id)
    if row is None or not row.stored:
        raise NotFound(f"no memory {memory_id!r} on this node")
    texts = _texts(store, memory_id)
    payload = MemoryErased(
        content_hash=content_hash(row.text or f"{row.user_message}\n{row.response}"),
        interactions=tuple(interactions_holding(store, memory_id, texts)),
    )
    return await brain.publish(payload, entity=memory_id)


def erase_status(store: ProjectionStore, memory_id: str) -> dict[str, Any]:
    """Which nodes have confirmed the erase, and which known nodes have not yet."""
    erasure = store.erasure(memory_id)
    if erasure is None:
        raise NotFound(f"no erase of {memory_id!r} is known on this node")
    known = {d.name for d in store.devices()}
    return {
        "memory": memory_id,
        "content_hash": erasure.content_hash,
        "erased_by": erasure.node,
        "at": erasure.ts,
        "interactions": list(erasure.interactions),
        "confirmed": erasure.confirmed,
        "pending": sorted(known - set(erasure.confirmed)),
    }
