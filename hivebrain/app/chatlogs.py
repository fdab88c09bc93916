"""Chat-session logs (the Local Brain's `logs/chat/*.json`) imported as conversation memories.

Why and how: docs/design.md section 10, `hivebrain/app/chatlogs.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hivebrain.app.agents import resolve
from hivebrain.app.brain import Brain
from hivebrain.app.redaction import redact_text
from hivebrain.errors import ConfigError
from hivebrain.events import LamportClock, Payload, derived_id
from hivebrain.events.agent import AgentCreated
from hivebrain.events.interaction import InteractionLogged
from hivebrain.events.memory import DEFAULT_AGENT, MemoryStored, Space
from hivebrain.projections.agent_queries import find
from hivebrain.projections.store import SqliteClockStore
from hivebrain.transport.event_writer import EventWriter
from hivebrain.transport.publisher import Ack

MAX_FILE_BYTES = 64 * 1024 * 1024
SOURCE = "chatlog"
TAG = "chat"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    role: str
    content: str
    timestamp: datetime | None = None
    agent: str | None = None


class ChatLog(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)
    title: str = ""
    created_at: datetime | None = None
    messages: list[ChatMessage]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True, slots=True)
class Turn:
    index: int  # of its first message in the log
    user_message: str | None
    response: str | None
    agent: str | None  # the agent name its assistant messages give
    asked: datetime | None
    answered: datetime | None

    @property
    def at(self) -> datetime | None:
        return self.asked or self.answered


def turns(log: ChatLog) -> list[Turn]:
    """The log's turns in order (see the module's docstring)."""
    out: list[Turn] = []
    pending: tuple[int, ChatMessage] | None = None
    open_turn = False  # the last turn may take more assistant messages
    for i, message in enumerate(log.messages):
        role = message.role.strip().lower()
        text = message.content.strip()
        if not text or role not in ("user", "assistant"):
            continue
        if role == "user":
            if pending is not None:
                out.append(_turn(pending, None))
            pending, open_turn = (i, message), False
        elif pending is not None:
            out.append(_turn(pending, message))
            pending, open_turn = None, True
        elif open_turn:
            last = out[-1]
            out[-1] = Turn(
                last.index,
                last.user_message,
                f"{last.response}\n\n{text}",
                last.agent or message.agent,
                last.asked,
                last.answered or _utc(message.timestamp),
            )
        else:
            out.append(Turn(i, None, text, message.agent, None, _utc(message.timestamp)))
            open_turn = True
    if pending is not None:
        out.append(_turn(pending, None))
    return out


def _turn(user: tuple[int, ChatMessage], answer: ChatMessage | None) -> Turn:
    index, message = user
    return Turn(
        index,
        message.content.strip(),
        answer.content.strip() if answer is not None else None,
        answer.agent if answer is not None else None,
        _utc(message.timestamp),
        _utc(answer.timestamp) if answer is not None else None,
    )


def read_chatlog(path: Path) -> ChatLog | str:
    """The log at `path`, or why it cannot be imported (one line)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"
        raw = path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"not JSON: {str(exc).splitlines()[0]}"
    if not isinstance(data, dict):
        return "not a chat log: expected a JSON object with id and messages"
    try:
        return ChatLog.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"not a chat log: {where}: {first['msg']}" if where else first["msg"]


def find_chatlogs(paths: Iterable[Path]) -> list[Path]:
    """The files named, and the *.json files under the directories named (recursively, hidden
    ones passed over). A path that does not exist is a ConfigError, raised before anything."""
    targets = [Path(p) for p in paths]
    for path in targets:
        if not path.exists():
            raise ConfigError(f"no such file or directory: {path}")
    found: list[Path] = []
    for path in targets:
        if not path.is_dir():
            found.append(path)
            continue
        for directory, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(
                Path(directory) / name
                for name in sorted(files)
                if name.lower().endswith(".json") and not name.startswith(".")
            )
    return list(dict.fromkeys(found))


def _millis(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment is not None else 0


def _content_hash(*parts: str | None) -> str:
    digest = hashlib.sha256()
    for part in parts:
        raw = (part if part is not None else "\0none").encode()
        digest.update(b"%d:" % len(raw) + raw)
    return digest.hexdigest()[:16]


@dataclass
class ImportSummary:
    files: int = 0  # files read as chat logs
    malformed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chats: int = 0
    turns: int = 0  # turns published
    unchanged: int = 0  # turns this node already holds
    interactions: int = 0
    agents_created: int = 0
    events: int = 0
    seconds: float = 0.0
    applied: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "malformed": [{"path": p, "reason": r} for p, r in self.malformed],
            "chats": self.chats,
            "turns": self.turns,
            "unchanged": self.unchanged,
            "interactions": self.interactions,
            "agents_created": self.agents_created,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "applied": self.applied,
        }


class ChatImporter:
    """Publishes the events of chat logs through `brain` (acks awaited together at the end).

    `agent`: one agent (name or uuid) for every turn instead of the agents the logs name."""

    def __init__(self, brain: Brain, *, agent: str | None = None, space: Space = "long_term"):
        self.brain = brain
        self.space: Space = space
        self.conn = brain.store.connection
        self._agent = resolve(self.conn, agent) if agent is not None else None
        self._agents: dict[str, str] = {}  # name in a log -> agent value of its memories
        self._clock_store = SqliteClockStore(brain.settings.db_path)
        self._writer = EventWriter(
            brain.settings.node, LamportClock(self._clock_store, block=256), brain.publisher
        )
        self._acks: list[asyncio.Future[Ack]] = []
        self.summary = ImportSummary()
        self._started = time.monotonic()

    def close(self) -> None:
        self._clock_store.close()

    def _known(self, event_ids: Sequence[str]) -> set[str]:
        rows = self.conn.execute(
            "SELECT event_id FROM applied WHERE event_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(event_ids)),),
        )
        return {row[0] for row in rows}

    async def _publish(self, payload: Payload, entity: str, event_id: str, ts: float) -> None:
        _, ack = await self._writer.send(payload, entity=entity, event_id=event_id, ts=ts)
        self._acks.append(ack)

    async def _agent_of(self, name: str | None) -> str:
        if self._agent is not None:
            return self._agent
        name = (name or "").strip()[:128]
        if not name or name == DEFAULT_AGENT:
            return DEFAULT_AGENT
        if name in self._agents:
            return self._agents[name]
        known = [a for a in find(self.conn, name) if a.name == name]
        if known:
            value = known[0].id
        else:  # the same name gives the same agent on every node and every run
            value = derived_id(0, "agent", name)
            event_id = derived_id(0, "agent.created", self.brain.settings.node, name)
            if not self._known([event_id]):
                await self._publish(AgentCreated(name=name), value, event_id, time.time())
                self.summary.agents_created += 1
        self._agents[name] = value
        return value

    def _holds(self, entity: str, turn: Turn, agent: str) -> bool:
        """Whether this node holds the turn's memory as it is, written by another node's
        import (with that node's event ids): storing it again would give the memory a later
        stamp, moving it after newer turns of its session, and log its interaction twice."""
        row = self.conn.execute(
            "SELECT user_message, response, agent FROM memories "
            "WHERE id = ? AND stored_event != ''",
            (entity,),
        ).fetchone()
        return row is not None and tuple(row) == (turn.user_message, turn.response, agent)

    async def import_file(self, path: Path) -> None:
        log = read_chatlog(path)
        if isinstance(log, str):
            self.summary.malformed.append((str(path), log))
            return
        self.summary.files += 1
        self.summary.chats += 1
        node = self.brain.settings.node
        created = _utc(log.created_at)
        planned: list[tuple[Turn, str, str, str]] = []
        for turn in turns(log):
            at = turn.at or created
            entity = derived_id(_millis(at), SOURCE, log.id, str(turn.index))
            content = _content_hash(turn.user_message, turn.response, turn.agent, self._agent)
            stored_id = derived_id(_millis(at), "memory.stored", node, entity, content)
            logged_id = derived_id(_millis(at), "interaction.logged", node, entity, content)
            planned.append((turn, entity, stored_id, logged_id))
        known = self._known([i for _, _, s, g in planned for i in (s, g)])
        for turn, entity, stored_id, logged_id in planned:
            if stored_id in known:
                self.summary.unchanged += 1
                continue
            agent = await self._agent_of(turn.agent)
            if self._holds(entity, turn, agent):
                self.summary.unchanged += 1
                continue
            at = turn.at or created
            ts = at.timestamp() if at is not None else 0.0
            if turn.user_message is not None and turn.response is not None:
                memory = MemoryStored(
                    user_message=turn.user_message,
                    response=turn.response,
                    session=log.id,
                    agent=agent,
                    space=self.space,
                    tags=(TAG,),
                    source=SOURCE,
                )
            else:
                text = turn.user_message if turn.user_message is not None else turn.response
                memory = MemoryStored(
                    text=text,
                    user_message=turn.user_message,
                    response=turn.response,
                    session=log.id,
                    agent=agent,
                    space=self.space,
                    tags=(TAG,),
                    source=SOURCE,
                )
            await self._publish(memory, entity, stored_id, ts)
            self.summary.turns += 1
            if turn.user_message is None or turn.response is None or logged_id in known:
                continue
            latency = 0.0
            if turn.asked is not None and turn.answered is not None:
                latency = max(0.0, (turn.answered - turn.asked).total_seconds() * 1000)
            logged = InteractionLogged(
                query=redact_text(turn.user_message),
                response=redact_text(turn.response),
                tool=SOURCE,
                latency_ms=latency,
                agent=agent,
                session=log.id,
            )
            await self._publish(logged, entity, logged_id, ts)
            self.summary.interactions += 1

    async def finish(self) -> ImportSummary:
        """Wait for every ack, then for the local projection to apply the last event."""
        acks = await asyncio.gather(*self._acks)
        self._acks = []
        self.summary.events += len(acks)
        if acks:
            last = max(acks, key=lambda a: a.seq)
            self.summary.applied = await self.brain.wait_applied(
                last, timeout=5.0 + len(acks) / 500
            )
        self.summary.seconds = time.monotonic() - self._started
        return self.summary
