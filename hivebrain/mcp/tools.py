"""What the MCP server's tools do, independent of the protocol: one method per tool, taking
its typed arguments (`arguments.py`) and returning JSON-ready data. Bad input raises
`ConfigError` with one line (an unknown id `NotFound`); the server turns it into a tool error.

Reads come from the node's projection; writes are events acknowledged by JetStream. A tool
that reads first waits (briefly) until the running node has applied this server's own writes,
so a memory stored by one call is found by the next.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from hivebrain.app.agents import resolve_plain
from hivebrain.app.brain import Brain, Written
from hivebrain.app.context import SessionContext, ToolCache
from hivebrain.app.erase import erase
from hivebrain.app.interactions import Interaction, InteractionLog, summarize_hits
from hivebrain.config import Settings
from hivebrain.embedding import query_vector
from hivebrain.errors import ConfigError, NotFound
from hivebrain.events.memory import MemoryForgotten, MemoryMoved, MemoryStored
from hivebrain.mcp.arguments import (
    ALL_AGENTS,
    CacheArgs,
    ClearArgs,
    ContextArgs,
    DevicesArgs,
    EraseArgs,
    ForgetArgs,
    KnowledgeArgs,
    MoveArgs,
    RecallArgs,
    StoreArgs,
)
from hivebrain.node.devices import device_row
from hivebrain.node.liveness import FLUSH_INTERVAL_S, read_liveness
from hivebrain.transport.publisher import Ack

log = structlog.get_logger(__name__)

CATCH_UP_TIMEOUT_S = 5.0
CLEAR_LIMIT = 100_000


#: ((model, vector) of a query, "") or (None, why recall uses keywords only).
QueryVector = Callable[[str], Awaitable[tuple[tuple[str, bytes] | None, str]]]


def embedder_lookup(settings: Settings) -> QueryVector:
    """Query vectors from the node's embedder (its model is loaded once per process)."""

    async def lookup(text: str) -> tuple[tuple[str, bytes] | None, str]:
        return await query_vector(settings, text)

    return lookup


def _hit(hit: Any) -> dict[str, Any]:
    data = hit.as_dict() if hasattr(hit, "as_dict") else dataclasses.asdict(hit)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


class MemoryTools:
    """The tools, over one opened brain, session context and interaction log."""

    def __init__(
        self,
        brain: Brain,
        context: SessionContext,
        interactions: InteractionLog,
        query_vector: QueryVector | None = None,
        cache: ToolCache | None = None,
    ) -> None:
        self.brain = brain
        self.store = brain.store
        self.context = context
        self.cache = cache
        self.interactions = interactions
        self.query_vector = query_vector or embedder_lookup(brain.settings)
        self._last_write: Ack | None = None  # the ack of this server's latest write

    # -- read-your-writes -----------------------------------------------------------------

    async def _publish(self, payload: Any, entity: str | None = None) -> Written:
        written = await self.brain.publish_acked(payload, entity=entity)
        if self._last_write is None or written.ack.seq > self._last_write.seq:
            self._last_write = written.ack
        return written

    async def caught_up(self, timeout: float = CATCH_UP_TIMEOUT_S) -> bool:
        """Wait until the running node's projection has applied this server's writes (True),
        or there is nothing to wait for; False when no node runs or it did not in time."""
        if self._last_write is None:
            return True
        return await self.brain.wait_applied(self._last_write, timeout)

    def _live_memory(self, memory_id: str) -> Any:
        row = self.store.memory(memory_id)
        if row is None or not row.stored or row.forgotten:
            raise NotFound(f"no memory {memory_id!r} on this node")
        return row

    # -- tools ------------------------------------------------------------------------------

    async def memory_recall(self, args: RecallArgs) -> dict[str, Any]:
        started = time.perf_counter()
        await self.caught_up()
        found, why = (None, "") if args.mode == "keyword" else await self.query_vector(args.query)
        every = args.agent == ALL_AGENTS
        result = self.store.recall(
            args.query,
            query_vector=found[1] if found else None,
            model=found[0] if found else None,
            mode=args.mode,
            limit=args.limit,
            agent=None if every else args.agent,
            space=args.space,
            tags=tuple(args.tags),
            all_agents=every,
        )
        note = why or result.note
        hits = [_hit(h) for h in result.hits]
        self.interactions.record_soon(
            Interaction(
                tool="memory_recall",
                query=args.query,
                response=summarize_hits([(h["id"], str(h.get("text", ""))) for h in hits]),
                latency_ms=(time.perf_counter() - started) * 1000,
                agent=args.agent,
                session=args.session,
            )
        )
        return {"mode": result.mode_used, "note": note, "count": len(hits), "results": hits}

    async def memory_store(self, args: StoreArgs) -> dict[str, Any]:
        started = time.perf_counter()
        payload = MemoryStored(
            text=args.text,
            agent=resolve_plain(self.store.connection, args.agent),
            space=args.space,
            tags=tuple(args.tags),
            session=args.session,
            source=args.source,
            confidence=args.confidence,
        )
        written = await self._publish(payload)
        self.interactions.record_soon(
            Interaction(
                tool="memory_store",
                query=args.text,
                response=f"stored {written.event.entity}",
                latency_ms=(time.perf_counter() - started) * 1000,
                agent=args.agent,
                session=args.session,
            )
        )
        return written.as_dict()

    async def memory_context(self, args: ContextArgs) -> dict[str, Any]:
        if args.action == "get":
            if args.key is None:
                entries = await self.context.list(args.session)
                return {
                    "session": args.session,
                    "context": {e.key: e.value for e in entries},
                    "entries": [e.as_dict() for e in entries],
                }
            entry = await self.context.get(args.session, args.key)
            if entry is None:
                return {"session": args.session, "key": args.key, "found": False}
            return {"session": args.session, "found": True, **entry.as_dict()}
        if args.key is None:
            raise ConfigError(f"memory_context {args.action} needs a key")
        if args.action == "set":
            if "value" not in args.model_fields_set:
                raise ConfigError("memory_context set needs a value")
            entry = await self.context.set(args.session, args.key, args.value, args.ttl_seconds)
            return {"session": args.session, **entry.as_dict()}
        deleted = await self.context.delete(args.session, args.key)
        return {"session": args.session, "key": args.key, "deleted": deleted}

    async def tool_cache(self, args: CacheArgs) -> dict[str, Any]:
        if self.cache is None:
            raise ConfigError("this server has no tool cache")
        if args.action == "get":
            entry = await self.cache.get(args.tool, args.arguments)
            if entry is None:
                return {"tool": args.tool, "found": False}
            return {"tool": args.tool, "found": True, **entry.as_dict()}  # value: the output
        if "output" not in args.model_fields_set:
            raise ConfigError("tool_cache put needs an output")
        entry = await self.cache.put(args.tool, args.arguments, args.output, args.ttl_seconds)
        return {"tool": args.tool, "cached": True, **entry.as_dict()}

    async def memory_clear(self, args: ClearArgs) -> dict[str, Any]:
        if args.session is None and args.agent is None:
            raise ConfigError("memory_clear needs a session, an agent, or both")
        if not args.confirm:
            what = " and ".join(
                part
                for part in (
                    args.session and f"the context of session {args.session!r}",
                    args.agent and f"the working space of agent {args.agent!r}",
                )
                if part
            )
            raise ConfigError(f"memory_clear would clear {what}: call it again with confirm=true")
        out: dict[str, Any] = {}
        if args.session is not None:
            out["session"] = args.session
            out["context_keys_cleared"] = await self.context.clear(args.session)
        if args.agent is not None:
            await self.caught_up()
            rows = self.store.list_memories(
                limit=CLEAR_LIMIT, agent=args.agent, space="working", all_agents=True
            )
            forgotten = []
            for start in range(0, len(rows), 100):
                batch = rows[start : start + 100]
                await asyncio.gather(
                    *(
                        self._publish(MemoryForgotten(reason="cleared by memory_clear"), row.id)
                        for row in batch
                    )
                )
                forgotten += [row.id for row in batch]
            out["agent"] = args.agent
            out["memories_forgotten"] = len(forgotten)
            out["ids"] = forgotten
        self.interactions.record_soon(
            Interaction(
                tool="memory_clear",
                query=f"session={args.session} agent={args.agent}",
                response=str({k: v for k, v in out.items() if k != "ids"}),
                agent=args.agent or "default",
                session=args.session,
            )
        )
        return out

    async def memory_move(self, args: MoveArgs) -> dict[str, Any]:
        await self.caught_up()
        row = self._live_memory(args.id)
        if row.space == args.space:
            return {"id": args.id, "space": args.space, "moved": False}
        written = await self._publish(
            MemoryMoved(space=args.space, from_space=row.space, reason=args.reason), args.id
        )
        return {**written.as_dict(), "from_space": row.space, "space": args.space, "moved": True}

    async def memory_forget(self, args: ForgetArgs) -> dict[str, Any]:
        await self.caught_up()
        self._live_memory(args.id)
        written = await self._publish(MemoryForgotten(reason=args.reason), args.id)
        return {**written.as_dict(), "forgotten": True}

    async def memory_erase(self, args: EraseArgs) -> dict[str, Any]:
        if not args.confirm:
            raise ConfigError("memory_erase needs confirm=true: erasing cannot be undone")
        await self.caught_up()
        written = await erase(self.brain, args.id)
        return {**written.as_dict(), "erased": True}

    async def knowledge_search(self, args: KnowledgeArgs) -> dict[str, Any]:
        started = time.perf_counter()
        await self.caught_up()
        hits = [dataclasses.asdict(h) for h in self.store.search_knowledge(args.query, args.limit)]
        self.interactions.record_soon(
            Interaction(
                tool="knowledge_search",
                query=args.query,
                response=summarize_hits([(h["source"], h["text"]) for h in hits]),
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        )
        return {"count": len(hits), "results": hits}

    async def devices_list(self, args: DevicesArgs) -> dict[str, Any]:
        await self.caught_up()
        seen = read_liveness(self.brain.settings.db_path)
        now = time.time()
        rows = []
        for record in self.store.devices():
            live = seen.get(record.name)
            online = live is not None and live.online(now, lag=FLUSH_INTERVAL_S)
            if args.online_only and not online:
                continue
            rows.append(
                {
                    **device_row(record),
                    "online": online,
                    "last_seen": None if live is None else live.last_seen,
                }
            )
        return {"count": len(rows), "devices": rows}
