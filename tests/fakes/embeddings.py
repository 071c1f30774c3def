"""OpenAI's ``POST /v1/embeddings`` for the fake upstreams (``FakeChat``,
``FakeResponses``): deterministic vectors so tests can assert what went
through, the request recorded like every other fake route.

A vector is ``vector_of(input, dims)``: unit length, from the sha256 of the
input (a text, or the JSON of a token array), ``dimensions`` long when the
request names it, else ``FAKE_DIMS``. Scripted by the first input's text:
``fail`` (500), ``fail-once`` (503 then success), ``rate-limit`` (429),
``bad-request`` (400 naming ``input``), ``garbled`` (200 with one embedding
too few). Usage counts whitespace-separated words (token arrays: ids).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.base import FakeUpstream, json_response, openai_error

FAKE_DIMS = 12


def vector_of(value: str | list[int], dims: int = FAKE_DIMS) -> list[float]:
    seed = value.encode() if isinstance(value, str) else orjson.dumps(value)
    raw = np.frombuffer(hashlib.sha256(seed).digest() * (dims // 32 + 1), dtype=np.uint8)[:dims]
    vec = raw.astype(np.float32) - 127.5
    out: list[float] = (vec / np.linalg.norm(vec)).tolist()
    return out


def embeddings_route(fake: FakeUpstream) -> Route:
    async def embeddings(request: Request) -> Response:
        body = await fake.record(request)
        inputs: Any = body.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        first = inputs[0] if isinstance(inputs[0], str) else ""
        fake.seen[first] += 1
        if first == "fail":
            return openai_error(500, "fake upstream failure", "server_error")
        if first == "fail-once" and fake.seen[first] == 1:
            return openai_error(503, "fake upstream overloaded", "server_error")
        if first == "rate-limit":
            return openai_error(429, "Rate limit reached for fake-embedding", "requests", code="rate_limit_exceeded")
        if first == "bad-request":
            return openai_error(400, "This model's maximum context length is 8192 tokens.",
                                "invalid_request_error", param="input", code="context_length_exceeded")
        dims = body.get("dimensions") or FAKE_DIMS
        vectors = [vector_of(v, dims) for v in inputs]
        if first == "garbled":
            vectors = vectors[1:]
        if body.get("encoding_format") == "base64":
            shown: list[Any] = [base64.b64encode(np.array(v, dtype="<f4").tobytes()).decode() for v in vectors]
        else:
            shown = vectors
        tokens = sum(len(v.split()) if isinstance(v, str) else len(v) for v in inputs)
        return json_response(200, {"object": "list", "model": body.get("model"),
                                   "data": [{"object": "embedding", "index": i, "embedding": e}
                                            for i, e in enumerate(shown)],
                                   "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    return Route("/v1/embeddings", embeddings, methods=["POST"])
