"""Embedders: text to vectors for semantic recall.

    embedder_for("local", cache_dir=data_dir / "models")   all-MiniLM-L6-v2, int8, in process
    embedder_for("ollama", url=..., model="all-minilm")    an Ollama server's /api/embed

Each returns an `Embedder`: `model_id`, `dim` and `await embed(texts)`, which gives one float32
little-endian, L2-normalised vector per text (the `vector` of an `EmbeddingComputed` event).
Failures raise `EmbeddingError`. A node's choice is an `EmbedderConfig` (config.py);
`embed_query` embeds a search query with the model of the node on the same data directory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hivebrain.errors import EmbeddingError

from .base import Embedder
from .config import EmbedderConfig

if TYPE_CHECKING:
    from hivebrain.config import Settings

__all__ = [
    "BACKENDS",
    "Embedder",
    "EmbedderConfig",
    "EmbeddingError",
    "embed_query",
    "embedder_for",
]

BACKENDS = ("local", "ollama")


def embedder_for(backend: str, **options: Any) -> Embedder:
    """The embedder of `backend`, built with `options` (its constructor's arguments)."""
    try:
        if backend == "local":
            from .local import LocalMiniLM

            cache_dir = options.pop("cache_dir")
            return LocalMiniLM(Path(cache_dir), **options)
        if backend == "ollama":
            from .ollama import OllamaEmbedder

            return OllamaEmbedder(**options)
    except (KeyError, TypeError) as exc:
        raise EmbeddingError(f"bad options for the {backend} embedder: {exc}") from exc
    raise EmbeddingError(f"unknown embedder backend {backend!r} (expected one of {BACKENDS})")


async def embed_query(settings: Settings, text: str) -> tuple[str, bytes] | None:
    """(model id, vector) of a search query, with the embedder the node runs; None when the
    node has none (recall then answers with keywords). Raises EmbeddingError on failure."""
    config = settings.embedder
    if config is None:
        return None
    embedder = await asyncio.to_thread(config.build, settings.data_dir)
    (vector,) = await embedder.embed([text])
    return embedder.model_id, vector


async def query_vector(settings: Settings, text: str) -> tuple[tuple[str, bytes] | None, str]:
    """((model id, vector) of a search query, "") or (None, why recall must use keywords)."""
    if settings.embedder is None:
        return None, "keyword search only: this node runs no embedder"
    try:
        return await embed_query(settings, text), ""
    except EmbeddingError as exc:
        return None, f"keyword search only: the query could not be embedded ({exc})"
