"""Which embedder a node runs, as `nodes.toml` (`[nodes.embedder]`) or `hivebrain up` says.

    [nodes.embedder]
    backend = "ollama"             # or "local" (the default: no server, no network)
    model = "nomic-embed-text"     # ollama only
    dim = 768                      # ollama only: the model's vector size
    url = "http://gpu-box:11434"   # ollama only; default: the node's ollama_url

The node writes its config into its runtime file, so commands run on the same data directory
(`recall`, the MCP server) embed their queries with the same model as the node's vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import Embedder

DEFAULT_OLLAMA_URL = "http://localhost:11434"

_BUILT: dict[tuple[EmbedderConfig, Path], Embedder] = {}


class EmbedderConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["local", "ollama"] = "local"
    model: str = Field(default="all-minilm", min_length=1)
    dim: int = Field(default=384, ge=1, le=65536)
    url: str | None = None
    batch: int = Field(default=64, ge=1, le=4096)
    timeout: float = Field(default=30.0, gt=0)

    def model_id(self) -> str:
        """The id the vectors of this config are stored under, without loading the model."""
        if self.backend == "ollama":
            return f"{self.model}@ollama"
        from .local import MODEL_ID

        return MODEL_ID

    def build(self, data_dir: Path) -> Embedder:
        """The embedder, loaded once per process (the local model blocks for a moment the
        first time: call it off the event loop)."""
        key = (self, data_dir)
        if key not in _BUILT:
            if self.backend == "local":
                from .local import LocalMiniLM

                _BUILT[key] = LocalMiniLM(data_dir / "models")
            else:
                from .ollama import OllamaEmbedder

                _BUILT[key] = OllamaEmbedder(
                    self.url or DEFAULT_OLLAMA_URL,
                    self.model,
                    batch=self.batch,
                    timeout=self.timeout,
                    dim=self.dim,
                )
        return _BUILT[key]
