"""The ``Embedder`` contract: texts in, one vector per text out.

Two kinds implement it: the model that ships with Responsa
(``embeddings.local``, offline) and any OpenAI-compatible upstream's
``/embeddings`` (``embeddings.upstream``). ``POST /v1/embeddings`` calls
``create`` (OpenAI's request, usage counted, the model's limits enforced as
400s); code inside the server (vector stores, ``file_search``) calls
``embed``, which is just the vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from responsa.protocol.embeddings import Embedded, EmbeddingRequest


class Embedder(Protocol):
    @property
    def model(self) -> str:
        """The canonical ``provider/model`` name (echoed in responses)."""
        ...

    @property
    def dimensions(self) -> int | None:
        """The length of a vector; ``None`` while unknown (an upstream, before its first answer)."""
        ...

    @property
    def max_input_tokens(self) -> int | None:
        """Tokens one input may have (the model's own tokens); ``None``: the upstream decides."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Each text's tokens as this model counts them (to size chunks to ``max_input_tokens``)."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order. A local model truncates a text past
        ``max_input_tokens`` (as sentence-transformers does); failures raise
        ``ResponsaError`` subclasses."""
        ...

    async def create(self, request: EmbeddingRequest) -> Embedded:
        """Serve one ``POST /v1/embeddings`` request (already validated by
        ``protocol.embeddings.parse``); model-specific limits are 400s."""
        ...
