"""Embeddings from an Ollama server (`POST /api/embed`, many texts per request).

Ollama's vectors are normalised here as well, so every backend stores unit vectors. Any failure
(server down, an HTTP error, a timeout, an answer of the wrong shape) is one EmbeddingError line.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import ollama
import pydantic

from hivebrain.errors import EmbeddingError

from .base import to_vectors


class OllamaEmbedder:
    """`model` on the Ollama server at `url`, `batch` texts per request, `dim` components.

    `dim` is the model's vector size (384 for all-minilm, 768 for nomic-embed-text); an answer of
    another size is an error, since vectors of one model id must all be comparable.
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        batch: int = 64,
        timeout: float = 30.0,
        dim: int = 384,
    ) -> None:
        if batch < 1:
            raise EmbeddingError(f"batch must be at least 1, got {batch}")
        self.url, self.model, self.batch, self.timeout = url, model, batch, timeout
        self.dim = dim
        self.model_id = f"{model}@ollama"
        self._client = ollama.AsyncClient(host=url, timeout=timeout)

    async def embed(self, texts: Sequence[str]) -> list[bytes]:
        vectors: list[bytes] = []
        for start in range(0, len(texts), self.batch):
            chunk = list(texts[start : start + self.batch])
            rows = await self._request(chunk)
            if len(rows) != len(chunk):
                raise EmbeddingError(
                    f"Ollama at {self.url} returned {len(rows)} vectors for {len(chunk)} texts"
                )
            for row in rows:
                if len(row) != self.dim:
                    raise EmbeddingError(
                        f"Ollama model {self.model} returned {len(row)}-d vectors, "
                        f"expected {self.dim}"
                    )
            vectors += to_vectors(rows, self.dim)
        return vectors

    async def _request(self, chunk: list[str]) -> Sequence[Sequence[float]]:
        where = f"Ollama at {self.url} (model {self.model})"
        try:
            response = await self._client.embed(model=self.model, input=chunk)
        except ollama.ResponseError as exc:
            raise EmbeddingError(f"{where}: HTTP {exc.status_code}: {exc.error}") from exc
        except httpx.TimeoutException as exc:
            raise EmbeddingError(f"{where}: no answer within {self.timeout:g}s") from exc
        except (ConnectionError, httpx.TransportError) as exc:
            raise EmbeddingError(f"{where}: cannot connect ({exc})") from exc
        except (pydantic.ValidationError, ValueError) as exc:
            first = str(exc).splitlines()[0]
            raise EmbeddingError(f"{where}: unexpected answer ({first})") from exc
        return response.embeddings
