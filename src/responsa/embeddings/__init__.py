"""Embeddings: the ``Embedder`` contract, the model that ships with Responsa
(``local/all-minilm-l6-v2``) and upstream embedding models.

    embedder = lookup(registry, "local/all-minilm-l6-v2")
    vectors = await embedder.embed(["a chunk", "another chunk"])

``POST /v1/embeddings`` (``api.embeddings``) is one user; vector stores and
``file_search`` call ``embed`` directly.
"""

from responsa.embeddings.base import Embedder
from responsa.embeddings.registry import DEFAULT_EMBEDDING_MODEL, available, lookup
from responsa.protocol.embeddings import Embedded, EmbeddingRequest

__all__ = ["DEFAULT_EMBEDDING_MODEL", "Embedded", "Embedder", "EmbeddingRequest", "available", "lookup"]
