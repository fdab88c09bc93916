"""Hypothesis strategies that build valid payloads and events of every registered type.

`payloads()` draws a payload of any type (or of the named types), `events()` wraps one in an
`Event` built with `Event.new`. `PAYLOADS` maps every registered type name to its strategy;
`tests/test_events_types.py` fails when a type is registered without one.

Values stay within what every port can carry: integers fit in a signed 64-bit word (msgpack,
SQLite), floats are finite, tags have no whitespace or commas, node names and entity ids are
valid NATS subject tokens.
"""

from __future__ import annotations

import struct
from typing import get_args

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from hivebrain.events import Event, Payload, VersionRef, all_types
from hivebrain.events.agent import AgentCreated
from hivebrain.events.device import (
    DeviceRegistered,
    DeviceStatusChanged,
    DeviceUpdated,
    Status,
    Tier,
)
from hivebrain.events.embedding import EmbeddingComputed
from hivebrain.events.interaction import InteractionLogged, Outcome
from hivebrain.events.knowledge import ChunkAdded, DocumentIngested, KnowledgeRemoved
from hivebrain.events.memory import (
    SPACES,
    MemoryDecayed,
    MemoryEdited,
    MemoryEraseConfirmed,
    MemoryErased,
    MemoryForgotten,
    MemoryMoved,
    MemoryReinforced,
    MemoryRestored,
    MemoryStored,
    TagRemoval,
)
from hivebrain.events.observation import ObservationWritten, ReadingsAggregated
from hivebrain.events.task import TaskAssigned, TaskCompleted, TaskRequested
from hivebrain.events.training import AdapterPromoted, AdapterTrained, DatasetExported

__all__ = [
    "PAYLOADS",
    "entities",
    "event_ids",
    "events",
    "lamports",
    "nodes",
    "payloads",
    "stamps",
    "tags",
]

MAX_INT = 2**63 - 1
MAX_LAMPORT = 2**53

# -- building blocks ---------------------------------------------------------------------------

_text = st.text(max_size=20)
_nonempty = st.text(min_size=1, max_size=20)
_words = _nonempty.filter(lambda s: bool(s.strip()))  # a memory's text cannot be blank
_optional_text = st.none() | _text
_count = st.integers(min_value=0, max_value=MAX_INT)
_small_count = st.integers(min_value=0, max_value=10_000)
_finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
_unit_interval = st.floats(min_value=0.0, max_value=1.0)
_hash = st.binary(min_size=4, max_size=32).map(bytes.hex)
_names = st.lists(_nonempty, max_size=4).map(tuple)


def nodes() -> SearchStrategy[str]:
    """Node names: lowercase subject tokens (see `envelope.NODE_RE`)."""
    return st.from_regex(r"[a-z0-9][a-z0-9_-]{0,15}", fullmatch=True)


def entities() -> SearchStrategy[str]:
    """Entity ids: uuid hex, or any subject token (see `envelope.TOKEN_RE`)."""
    return st.uuids().map(lambda u: u.hex) | st.from_regex(r"[A-Za-z0-9_:-]{1,40}", fullmatch=True)


def event_ids() -> SearchStrategy[str]:
    return st.uuids().map(lambda u: u.hex)


def lamports() -> SearchStrategy[int]:
    return st.integers(min_value=1, max_value=MAX_LAMPORT)


def stamps() -> SearchStrategy[VersionRef]:
    return st.builds(VersionRef, lamport=lamports(), node=nodes(), event_id=event_ids())


def tags() -> SearchStrategy[str]:
    """A tag: 1-64 characters, no whitespace, no commas."""
    return st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_categories=("Z", "Cc", "Cs"), exclude_characters=","
        ),
        min_size=1,
        max_size=16,
    )


_tag_tuple = st.lists(tags(), max_size=4, unique=True).map(tuple)

# -- memory ------------------------------------------------------------------------------------

_space = st.sampled_from(SPACES)
_memory_common = {
    "session": _optional_text,
    "agent": st.text(min_size=1, max_size=20),
    "space": _space,
    "tags": _tag_tuple,
    "source": _text,
    "confidence": _unit_interval,
    "shared": st.booleans(),
}
_memory_stored = st.builds(
    MemoryStored,
    text=_words,
    user_message=_optional_text,
    response=_optional_text,
    **_memory_common,
) | st.builds(
    MemoryStored,
    text=st.none(),
    user_message=_words,
    response=_words,
    **_memory_common,
)
_memory_edited = st.builds(
    MemoryEdited,
    base=stamps(),
    text=st.none() | _nonempty,
    tag=_tag_tuple,
    untag=st.lists(
        st.builds(TagRemoval, tag=tags(), observed=st.lists(event_ids(), max_size=3).map(tuple)),
        max_size=3,
    ).map(tuple),
)
_amount = st.floats(min_value=0.0, max_value=1000.0, exclude_min=True)

# -- knowledge ---------------------------------------------------------------------------------


@st.composite
def _chunk_added(draw: st.DrawFn) -> ChunkAdded:
    total = draw(st.integers(min_value=1, max_value=10_000))
    return ChunkAdded(
        document=draw(entities()),
        source=draw(_nonempty),
        chunk_index=draw(st.integers(min_value=0, max_value=total - 1)),
        total_chunks=total,
        text=draw(_nonempty),
        content_hash=draw(_hash),
    )


# -- observation -------------------------------------------------------------------------------


@st.composite
def _readings_aggregated(draw: st.DrawFn) -> ReadingsAggregated:
    start = draw(st.floats(min_value=0.0, max_value=4e9))
    low, mean, high = sorted(draw(st.lists(_finite, min_size=3, max_size=3)))
    return ReadingsAggregated(
        source=draw(_nonempty),
        window_start=start,
        window_end=start + draw(st.floats(min_value=0.0, max_value=1e6)),
        count=draw(st.integers(min_value=1, max_value=MAX_INT)),
        min=low,
        max=high,
        mean=mean,
        unit=draw(_text),
    )


# -- embedding ---------------------------------------------------------------------------------


@st.composite
def _embedding_computed(draw: st.DrawFn) -> EmbeddingComputed:
    dim = draw(st.integers(min_value=1, max_value=16))
    values = draw(
        st.lists(
            st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=dim, max_size=dim
        )
    )
    return EmbeddingComputed(
        model=draw(_nonempty),
        dim=dim,
        vector=struct.pack(f"<{dim}f", *values),
        content_hash=draw(_hash),
    )


# -- the table ---------------------------------------------------------------------------------

PAYLOADS: dict[str, SearchStrategy[Payload]] = {
    AgentCreated.TYPE: st.builds(
        AgentCreated, name=st.text(min_size=1, max_size=30), description=_text
    ),
    DeviceRegistered.TYPE: st.builds(
        DeviceRegistered,
        name=_nonempty,
        tier=st.sampled_from(get_args(Tier)),
        arch=_text,
        cores=_small_count,
        ram_mb=_count,
        gpu=_optional_text,
        capabilities=_names,
        specialization=_text,
        location=_text,
        models=_names,
    ),
    DeviceUpdated.TYPE: st.builds(
        DeviceUpdated,
        tier=st.none() | st.sampled_from(get_args(Tier)),
        arch=_optional_text,
        cores=st.none() | _small_count,
        ram_mb=st.none() | _count,
        gpu=_optional_text,
        capabilities=st.none() | _names,
        specialization=_optional_text,
        location=_optional_text,
        models=st.none() | _names,
    ),
    DeviceStatusChanged.TYPE: st.builds(
        DeviceStatusChanged, status=st.sampled_from(get_args(Status)), reason=_text
    ),
    EmbeddingComputed.TYPE: _embedding_computed(),
    InteractionLogged.TYPE: st.builds(
        InteractionLogged,
        query=_text,
        response=_text,
        tool=_text,
        outcome=st.sampled_from(get_args(Outcome)),
        feedback=_text,
        latency_ms=st.floats(min_value=0.0, max_value=1e7),
        agent=_nonempty,
        session=_optional_text,
    ),
    ChunkAdded.TYPE: _chunk_added(),
    DocumentIngested.TYPE: st.builds(
        DocumentIngested,
        source=_nonempty,
        title=_text,
        kind=st.sampled_from(["text", "markdown", "pdf"]) | _text,
        content_hash=_hash,
        size=_count,
        total_chunks=_small_count,
    ),
    KnowledgeRemoved.TYPE: st.builds(KnowledgeRemoved, source=_text, reason=_text),
    MemoryDecayed.TYPE: st.builds(MemoryDecayed, amount=_amount),
    MemoryEdited.TYPE: _memory_edited,
    MemoryForgotten.TYPE: st.builds(MemoryForgotten, reason=_text),
    MemoryMoved.TYPE: st.builds(
        MemoryMoved, space=_space, from_space=st.none() | _space, reason=_text
    ),
    MemoryReinforced.TYPE: st.builds(MemoryReinforced, amount=_amount),
    MemoryRestored.TYPE: st.builds(MemoryRestored, reason=_text),
    MemoryErased.TYPE: st.builds(
        MemoryErased,
        content_hash=st.text("0123456789abcdef", min_size=64, max_size=64),
        interactions=st.lists(entities(), max_size=3).map(tuple),
    ),
    MemoryEraseConfirmed.TYPE: st.builds(MemoryEraseConfirmed, messages=_count),
    MemoryStored.TYPE: _memory_stored,
    ReadingsAggregated.TYPE: _readings_aggregated(),
    ObservationWritten.TYPE: st.builds(
        ObservationWritten,
        text=_nonempty,
        kind=_text,
        readings=st.lists(entities(), max_size=4).map(tuple),
        model=_text,
        confidence=_unit_interval,
    ),
    TaskAssigned.TYPE: st.builds(TaskAssigned, assignee=nodes(), reason=_text),
    TaskCompleted.TYPE: st.builds(
        TaskCompleted, status=st.sampled_from(["done", "failed", "cancelled"]), result=_text
    ),
    TaskRequested.TYPE: st.builds(
        TaskRequested,
        kind=_nonempty,
        prompt=_text,
        requires=_names,
        min_tier=st.none() | st.sampled_from(get_args(Tier)),
    ),
    AdapterPromoted.TYPE: st.builds(AdapterPromoted, adapter=_nonempty, reason=_text),
    AdapterTrained.TYPE: st.builds(
        AdapterTrained,
        base_model=_nonempty,
        dataset=_nonempty,
        object_name=_nonempty,
        metrics=st.dictionaries(_nonempty, _finite, max_size=4),
    ),
    DatasetExported.TYPE: st.builds(
        DatasetExported,
        train_count=_count,
        validation_count=_count,
        content_hash=_hash,
        object_name=_nonempty,
        redacted=_count,
    ),
}


def payloads(*types: str) -> SearchStrategy[Payload]:
    """A valid payload of any registered type, or of one of `types` (names like "memory.stored")."""
    names = types or tuple(all_types())
    unknown = [name for name in names if name not in PAYLOADS]
    if unknown:
        raise ValueError(f"no payload strategy for {', '.join(unknown)}")
    return st.one_of([PAYLOADS[name] for name in names])


def _fixed_or(
    value: str | SearchStrategy[str] | None, default: SearchStrategy[str]
) -> SearchStrategy[str]:
    if value is None:
        return default
    if isinstance(value, str):
        return st.just(value)
    return value


@st.composite
def events(
    draw: st.DrawFn,
    node: str | SearchStrategy[str] | None = None,
    entity: str | SearchStrategy[str] | None = None,
    payload: SearchStrategy[Payload] | None = None,
    lamport: SearchStrategy[int] | None = None,
) -> Event:
    """An `Event` built with `Event.new`.

    `node` and `entity` are a fixed value or a strategy (default: any valid one); `payload`
    defaults to `payloads()`, `lamport` to any valid stamp.
    """
    return Event.new(
        draw(payloads() if payload is None else payload),
        node=draw(_fixed_or(node, nodes())),
        lamport=draw(lamports() if lamport is None else lamport),
        entity=draw(_fixed_or(entity, entities())),
        event_id=draw(event_ids()),
        ts=draw(st.floats(min_value=0.0, max_value=4e9)),
    )
