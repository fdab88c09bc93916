"""The one error tree of hivebrain.

    HivebrainError                  anything hivebrain raises on purpose
    ├── ConfigError                 bad configuration or command-line input
    ├── EventError                  an event that cannot be built, encoded or decoded
    │   ├── UnknownEventType        a `type` that is not in the registry
    │   └── InvalidEvent            bytes or fields that do not form a valid event
    ├── BusError                    talking to NATS / JetStream failed
    │   ├── NotConnected            no server reachable at the given address
    │   └── PublishTimeout          an event was not acknowledged after every retry
    ├── ServerError                 the local nats-server could not be started or supervised
    ├── ProjectionError             the local SQLite projection cannot be used
    └── EmbeddingError              an embedder cannot load its model or compute vectors

Adapters translate driver errors (nats-py, sqlite3, pydantic, onnxruntime, ollama) into this
tree; the CLI turns any of them into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations


class HivebrainError(Exception):
    """Base of every error hivebrain raises on purpose."""

    exit_code = 1


class ConfigError(HivebrainError):
    """Bad configuration or command-line input."""

    exit_code = 2


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
