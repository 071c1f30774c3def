"""An upstream's embedding models: ``POST {base_url}/embeddings`` of a
configured OpenAI-compatible provider (OpenAI, vLLM, Ollama, llama.cpp's
server...), through that provider's own connection pool, credentials and
retry policy (``HTTPProvider.post_json``).

The request goes through as the client sent it (token arrays, ``dimensions``
and ``user`` included: the upstream knows its own limits and answers 400s
we pass on); only ``encoding_format`` is left to its default, ``float``,
which every compatible server speaks, and the vectors are re-encoded here.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from responsa.embeddings import openai_tokens
from responsa.protocol.embeddings import Embedded, EmbeddingRequest

if TYPE_CHECKING:
    from responsa.protocol.embeddings import Vectors
from responsa.providers.base import ProviderError


@runtime_checkable
class JSONUpstream(Protocol):
    """What an upstream embedder needs of its provider (``HTTPProvider``)."""

    async def post_json(self, path: str, body: dict[str, Any]) -> Any: ...


def _bad(why: str) -> ProviderError:
    return ProviderError(f"The upstream sent an invalid embeddings response: {why}.", code="upstream_error")


def _vector(value: Any) -> Any:
    import numpy as np

    if isinstance(value, str):  # a server that answers base64 whatever was asked
        return np.frombuffer(base64.b64decode(value), dtype="<f4")
    return value


def _vectors(payload: Any, count: int) -> Vectors:
    import numpy as np

    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or len(data) != count:
        raise _bad(f"expected {count} embeddings in 'data'")
    try:
        rows = sorted(data, key=lambda d: int(d["index"]))
        matrix = np.array([_vector(d["embedding"]) for d in rows], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(str(exc) or type(exc).__name__) from None
    if matrix.ndim != 2 or not np.isfinite(matrix).all():
        raise _bad("the embeddings are not equally long arrays of numbers")
    return matrix


class UpstreamEmbedder:
    """An ``Embedder`` for one model of one provider."""

    def __init__(self, provider: JSONUpstream, path: str, upstream_model: str, name: str) -> None:
        self._provider = provider
        self._path = path
        self._upstream = upstream_model
        self._name = name
        self._dims: int | None = None

    @property
    def model(self) -> str:
        return self._name

    @property
    def dimensions(self) -> int | None:
        return self._dims

    @property
    def max_input_tokens(self) -> int | None:
        return None

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return openai_tokens.count(texts)  # the encoding of OpenAI's embedding models

    async def _call(self, body: dict[str, Any], inputs: list[str] | list[list[int]]) -> Embedded:
        payload = await self._provider.post_json(self._path, body)
        vectors = _vectors(payload, len(inputs))
        self._dims = vectors.shape[1]
        usage = payload.get("usage")
        tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if not isinstance(tokens, int):  # servers that report no usage: count as OpenAI would
            tokens = sum(len(i) for i in inputs) if isinstance(inputs[0], list) else sum(self.count_tokens(inputs))
        return Embedded(vectors=vectors, prompt_tokens=tokens)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        inputs = list(texts)
        vectors: list[list[float]] = (await self._call({"model": self._upstream, "input": inputs},
                                                       inputs)).vectors.tolist()
        return vectors

    async def create(self, request: EmbeddingRequest) -> Embedded:
        body: dict[str, Any] = {"model": self._upstream, "input": request.inputs}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        if request.user is not None:
            body["user"] = request.user
        return await self._call(body, request.inputs)
