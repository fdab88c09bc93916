"""Embedders: text to vectors for semantic recall.

    embedder_for("local", cache_dir=data_dir / "models")   all-MiniLM-L6-v2, int8, in process
    embedder_for("ollama", url=..., model="all-minilm")    an Ollama server's /api/embed

Each returns an `Embedder`: `model_id`, `dim` and `await embed(texts)`, which gives one float32
little-endian, L2-normalised vector per text (the `vector` of an `EmbeddingComputed` event).
Failures raise `EmbeddingError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hivebrain.errors import EmbeddingError

from .base import Embedder

__all__ = ["BACKENDS", "Embedder", "EmbeddingError", "embedder_for"]

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
