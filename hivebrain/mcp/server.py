"""The MCP server: hivebrain's memory tools for LLM clients, over stdio.

Why and how: docs/design.md section 10, `hivebrain/mcp/server.py`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
import structlog
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from pydantic import ValidationError

from hivebrain.app.connection import open_brain
from hivebrain.app.context import ContextSettings, open_context
from hivebrain.app.interactions import InteractionLog
from hivebrain.config import Settings
from hivebrain.errors import HivebrainError
from hivebrain.mcp.arguments import (
    Arguments,
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
from hivebrain.mcp.tools import MemoryTools

log = structlog.get_logger(__name__)

SERVER_NAME = "hivebrain"
INSTRUCTIONS = (
    "hivebrain is the homelab's shared long-term memory. Recall before answering questions "
    "about the user's machines, projects or past decisions; store what is worth remembering "
    "across conversations; keep per-conversation state with memory_context."
)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    arguments: type[Arguments]
    run: Callable[[MemoryTools, Any], Awaitable[dict[str, Any]]]
    read_only: bool = False
    destructive: bool = False

    def tool(self) -> types.Tool:
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        return types.Tool(
            name=self.name,
            description=self.description,
            input_schema=schema,
            annotations=types.ToolAnnotations(
                read_only_hint=self.read_only, destructive_hint=self.destructive
            ),
        )


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            "memory_recall",
            "Search the shared memory for what is relevant to a query (keywords and meaning, "
            "best first). Returns memories (and, where the node indexes them, knowledge chunks "
            "and observations) with their ids, texts, tags and scores.",
            RecallArgs,
            MemoryTools.memory_recall,
            read_only=True,
        ),
        ToolSpec(
            "memory_store",
            "Remember something worth keeping across conversations. Returns the new memory's "
            "id once the event is durably written.",
            StoreArgs,
            MemoryTools.memory_store,
        ),
        ToolSpec(
            "memory_context",
            "Read or write the current session's state: small JSON values under keys, kept 7 "
            "days (by default) and shared by every program on this node. action=get without a "
            "key returns the whole context.",
            ContextArgs,
            MemoryTools.memory_context,
        ),
        ToolSpec(
            "tool_cache",
            "Reuse a tool's earlier output: get what `tool` returned for the same `arguments`, "
            "or put an output to cache (kept 1 hour by default, shared by the programs of this "
            "node).",
            CacheArgs,
            MemoryTools.tool_cache,
        ),
        ToolSpec(
            "memory_clear",
            "Reset a session: clear its context and/or forget an agent's working-space "
            "memories. Needs confirm=true; forgotten memories stay in the event history.",
            ClearArgs,
            MemoryTools.memory_clear,
            destructive=True,
        ),
        ToolSpec(
            "memory_move",
            "Move a memory to another space (working, long_term, personal_logs, archive).",
            MoveArgs,
            MemoryTools.memory_move,
        ),
        ToolSpec(
            "memory_forget",
            "Forget a memory: recall no longer returns it (the history stays in the log).",
            ForgetArgs,
            MemoryTools.memory_forget,
            destructive=True,
        ),
        ToolSpec(
            "memory_erase",
            "Erase a memory everywhere: every node deletes its text, history and vectors, and "
            "confirms. Needs confirm=true; unlike memory_forget it cannot be undone.",
            EraseArgs,
            MemoryTools.memory_erase,
            destructive=True,
        ),
        ToolSpec(
            "knowledge_search",
            "Search the documents ingested into the hive (notes, READMEs, source files); "
            "returns matching chunks with their source path.",
            KnowledgeArgs,
            MemoryTools.knowledge_search,
            read_only=True,
        ),
        ToolSpec(
            "devices_list",
            "The homelab's devices: hardware tier, architecture, cores, RAM, GPU, "
            "capabilities, status and whether each is online.",
            DevicesArgs,
            MemoryTools.devices_list,
            read_only=True,
        ),
    )
}


def invalid_arguments(tool: str, exc: ValidationError) -> str:
    """One line: the first problem, and how many more there are."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown argument"
    elif first["type"] == "missing":
        message = "required argument missing"
    line = f"invalid arguments for {tool}: {where + ': ' if where else ''}{message}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more)"
    return line


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


async def call(tools: MemoryTools, name: str, arguments: dict[str, Any] | None) -> Any:
    """Run one tool call: its result, or a one-line error result."""
    spec = TOOLS.get(name)
    if spec is None:
        return _error(f"unknown tool {name!r}; the tools are {', '.join(TOOLS)}")
    try:
        args = spec.arguments.model_validate(arguments or {})
    except ValidationError as exc:
        return _error(invalid_arguments(name, exc))
    try:
        data = await spec.run(tools, args)
    except HivebrainError as exc:
        return _error(f"{name}: {exc}")
    except Exception as exc:  # a bug: one line to the client, the details to the log
        log.error("mcp.tool_failed", tool=name, exc_info=True)
        return _error(f"{name}: internal error: {type(exc).__name__}: {exc}")
    # JSON as text only: a second, structured copy of the same data doubles the work of
    # encoding and validating every answer (recall p50 about 2x) for no new information.
    text = json.dumps(data, ensure_ascii=False, default=str)
    return types.CallToolResult(content=[types.TextContent(text=text)])


def build_server(tools: MemoryTools, version: str = "") -> Server[Any]:
    async def list_tools(
        _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[spec.tool() for spec in TOOLS.values()])

    async def call_tool(
        _ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        result: types.CallToolResult = await call(tools, params.name, params.arguments)
        return result

    return Server(
        SERVER_NAME,
        version=version,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


@dataclass(frozen=True, slots=True)
class McpOptions:
    ttls: ContextSettings = field(default_factory=ContextSettings)
    log_interactions: bool = True


async def serve(settings: Settings, options: McpOptions) -> None:
    """Open the node's brain and context, then serve MCP on stdin/stdout until stdin closes."""
    from importlib.metadata import version

    async with open_brain(settings) as brain:
        context, cache = await open_context(brain.bus, settings.node, options.ttls)
        interactions = InteractionLog(brain.publish_acked, enabled=options.log_interactions)
        tools = MemoryTools(brain, context, interactions, cache=cache)
        server = build_server(tools, version("hivebrain"))
        log.info("mcp.serving", node=settings.node, interactions=options.log_interactions)
        try:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
        finally:
            await interactions.flush()
