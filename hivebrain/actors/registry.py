"""Which actor class a name in nodes.toml (`actors = [...]`) stands for.

Actor modules register their class with `@register`; `actors_for` turns a node's list of names
into actor instances, or one ConfigError naming the unknown ones and the known ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from hivebrain.errors import ConfigError

from .actor import Actor, ActorSetup

A = TypeVar("A", bound=type[Actor])

ACTORS: dict[str, type[Actor]] = {}


def register(cls: A) -> A:
    """Class decorator: make an actor class available under its `name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if ACTORS.get(cls.name, cls) is not cls:
        raise ValueError(f"actor name {cls.name!r} registered twice")
    ACTORS[cls.name] = cls
    return cls


def actors_for(names: Iterable[str], setup: ActorSetup) -> list[Actor]:
    """One new instance of each named actor, built from `setup`, in the order given (repeats
    are ignored)."""
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in ACTORS]
    if unknown:
        known = ", ".join(sorted(ACTORS)) or "none yet"
        raise ConfigError(f"unknown actor {', '.join(map(repr, unknown))} (known: {known})")
    return [ACTORS[name].build(setup) for name in wanted]
