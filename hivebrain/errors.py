"""The one error tree of hivebrain.

    HivebrainError                anything hivebrain raises on purpose                 exit 1
    ├── ConfigError               bad configuration or command-line input              exit 2
    ├── NotFound                  an id, name or key this node does not know           exit 3
    ├── EventError                an event that cannot be built, encoded or decoded    exit 2
    │   ├── UnknownEventType      a `type` that is not in the registry
    │   └── InvalidEvent          bytes or fields that do not form a valid event
    ├── BusError                  talking to NATS / JetStream failed
    │   ├── NotConnected          no server reachable at the given address
    │   └── PublishTimeout        an event was not acknowledged after every retry
    ├── ServerError               the local nats-server could not be started or supervised
    ├── ProjectionError           the local SQLite projection cannot be used
    │   ├── OutOfTurn             a batch handed over out of turn (the one before it failed)
    │   └── WriterGone            the process applying a replay's batches died
    └── EmbeddingError            an embedder cannot load its model or compute vectors

Adapters translate driver errors (nats-py, sqlite3, pydantic, onnxruntime, ollama) into this
tree; the CLI turns any of them into one line on stderr and its exit code (every error not
marked otherwise exits 1; a bug, not an error of this tree, is one line and exit 1 too).
"""

from __future__ import annotations


class HivebrainError(Exception):
    """Base of every error hivebrain raises on purpose."""

    exit_code = 1


class ConfigError(HivebrainError):
    """Bad configuration or command-line input."""

    exit_code = 2


class NotFound(HivebrainError):
    """An id, name or key this node does not know (a memory, agent, device, context key).
    Not bad input: the same command may succeed once the node has seen the event."""

    exit_code = 3


class EventError(HivebrainError):
    """An event that cannot be built, encoded or decoded."""

    exit_code = 2


class UnknownEventType(EventError):
    """The event's `type` is not registered."""


class InvalidEvent(EventError):
    """Bytes or fields that do not form a valid event of its type."""


class BusError(HivebrainError):
    """Talking to NATS / JetStream failed."""


class NotConnected(BusError):
    """No NATS server is reachable at the configured address."""


class PublishTimeout(BusError):
    """An event was not acknowledged by JetStream after every retry."""


class ServerError(HivebrainError):
    """The local nats-server could not be started or supervised."""


class ProjectionError(HivebrainError):
    """The local SQLite projection cannot be opened or used."""


class OutOfTurn(ProjectionError):
    """A batch was handed to the store expecting stream positions it does not have (the batch
    before it failed): nothing of it was written."""


class WriterGone(ProjectionError):
    """The process applying a replay's batches died; nothing after its last commit is kept."""


class EmbeddingError(HivebrainError):
    """An embedder cannot load its model or compute vectors (missing weights, a backend down)."""
