"""What every embedder offers: a model id, a dimension and `embed`, returning vectors as bytes.

Vectors are float32 little-endian and L2-normalised, exactly the `vector` of an
`EmbeddingComputed` event, so a cosine similarity is a dot product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from hivebrain.errors import EmbeddingError

__all__ = ["Embedder", "EmbeddingError", "to_vectors"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors of one model (`model_id`) with `dim` float32 components."""

    model_id: str
    dim: int

    async def embed(self, texts: Sequence[str]) -> list[bytes]:
        """One float32 little-endian, L2-normalised vector per text, in the order given."""
        ...


def to_vectors(matrix: npt.ArrayLike, dim: int) -> list[bytes]:
    """Rows of `matrix` as float32 little-endian bytes, each scaled to unit length.

    A row of zeros stays zeros (there is no direction to keep).
    """
    rows = np.asarray(matrix, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != dim:
        raise EmbeddingError(f"expected vectors of {dim} dimensions, got shape {rows.shape}")
    if not np.isfinite(rows).all():
        raise EmbeddingError("the model returned a vector that is not finite")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit = (rows / np.maximum(norms, 1e-12)).astype("<f4")
    return [row.tobytes() for row in unit]
