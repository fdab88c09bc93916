"""The embedder: gives memories, knowledge chunks and observations a vector of the node's model.

Why and how: docs/design.md section 10, `hivebrain/actors/embedder.py`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import structlog

from hivebrain.background import cancel_and_wait
from hivebrain.embedding.base import Embedder
from hivebrain.errors import ConfigError
from hivebrain.events import Event
from hivebrain.events.embedding import EmbeddingComputed, content_hash
from hivebrain.events.knowledge import ChunkAdded
from hivebrain.events.memory import MemoryEdited, MemoryStored
from hivebrain.events.observation import ObservationWritten
from hivebrain.projections import embedding_queries

from .actor import Actor, ActorSetup, Context
from .registry import register

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Text:
    entity: str
    text: str
    digest: str


def texts_of(events: Sequence[Event]) -> list[Text]:
    """The texts `events` bring, the last per entity (in stream order, a later edit wins)."""
    found: dict[str, Text] = {}
    for event in events:
        payload = event.payload
        if isinstance(payload, MemoryStored):
            text: str | None = payload.content()
        elif isinstance(payload, MemoryEdited | ChunkAdded | ObservationWritten):
            text = payload.text
        else:
            text = None
        if text:
            found.pop(event.entity, None)
            found[event.entity] = Text(event.entity, text, content_hash(text))
    return list(found.values())


@register
class EmbedderActor(Actor):
    name = "embedder"
    consumes = (MemoryStored, MemoryEdited, ChunkAdded, ObservationWritten)
    batch_size = 64

    def __init__(
        self,
        embedder: Embedder,
        *,
        offline_after: float = 5.0,
        sweep_every: float = 2.0,
    ) -> None:
        self.embedder = embedder
        self.offline_after = offline_after
        self.sweep_every = sweep_every
        self.embedded = 0  # texts sent to the model
        self.reused = 0  # vectors taken from the cache instead
        self._sweeper: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one write at a time: batches and the sweep
        self._swept: set[str] = set()  # entities this offline spell already embedded

    @classmethod
    def build(cls, setup: ActorSetup) -> Self:
        if setup.embedder is None:
            raise ConfigError("the embedder actor needs an embedder: add [nodes.embedder]")
        return cls(setup.embedder.build(setup.data_dir))

    def shared_key(self) -> str:
        return re.sub(r"[^a-z0-9_-]+", "-", self.embedder.model_id.lower()).strip("-")[:40]

    async def on_start(self, ctx: Context) -> None:
        await super().on_start(ctx)
        self._sweeper = asyncio.create_task(self._sweep(), name="embedder-sweep")

    async def on_stop(self) -> None:
        if self._sweeper is not None:
            await cancel_and_wait(self._sweeper)
            self._sweeper = None

    async def handle(self, events: list[Event]) -> None:
        await self.embed(texts_of(events))

    async def embed(self, texts: Sequence[Text]) -> None:
        """Publish a vector for each text that lacks one of this model, calling the model only
        for texts whose hash has no vector yet."""
        model = self.embedder.model_id
        conn = self.ctx.store.connection
        async with self._lock:
            stored = embedding_queries.stored_hashes(conn, model, [t.entity for t in texts])
            todo = [t for t in texts if stored.get(t.entity) != t.digest]
            if not todo:
                return
            known = embedding_queries.vectors_by_hash(conn, model, [t.digest for t in todo])
            fresh = list({t.digest: t.text for t in todo if t.digest not in known}.items())
            if fresh:
                vectors = await self.embedder.embed([text for _, text in fresh])
                known.update(zip((digest for digest, _ in fresh), vectors, strict=True))
                self.embedded += len(fresh)
            self.reused += len(todo) - len(fresh)
            await asyncio.gather(
                *(
                    self.ctx.publish(
                        EmbeddingComputed(
                            model=model,
                            dim=self.embedder.dim,
                            vector=known[t.digest],
                            content_hash=t.digest,
                        ),
                        entity=t.entity,
                    )
                    for t in todo
                )
            )

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        offline_since: float | None = None
        while True:
            await asyncio.sleep(self.sweep_every)
            if self.ctx.online():
                offline_since = None
                self._swept.clear()
                continue
            now = loop.time()
            offline_since = offline_since if offline_since is not None else now
            if now - offline_since < self.offline_after:
                continue
            try:
                await self._sweep_once()
            except Exception as exc:  # the next sweep tries again; never kill the actor
                log.warning("embedder.sweep_failed", error=f"{type(exc).__name__}: {exc}")

    async def _sweep_once(self) -> None:
        rows = embedding_queries.without_vector(
            self.ctx.store.connection, self.embedder.model_id, self.batch_size + len(self._swept)
        )
        # What the last sweep published may not be applied yet: not again in this spell.
        texts = [Text(e, t, content_hash(t)) for e, t in rows if e not in self._swept]
        if texts:
            log.info("embedder.offline_sweep", texts=len(texts))
            await self.embed(texts[: self.batch_size])
            self._swept.update(t.entity for t in texts[: self.batch_size])
