"""``POST /v1/embeddings``: OpenAI's embeddings endpoint, served by the
model that ships with Responsa or passed to an upstream's.

The request is validated (``protocol.embeddings.parse``), the model name
resolved to an ``Embedder`` (``embeddings.lookup``), and the vectors come
back as OpenAI's ``list`` of ``embedding`` objects, floats or base64. Auth
and tenancy are every route's: the tenant is checked before anything runs
(embeddings store nothing, so there is no tenant data to separate), and
the tokens are charged to the key like a response's: its per-minute token
limit and budget, and ``GET /v1/usage`` (input tokens, no output).
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api.state import json_body, state
from responsa.embeddings import lookup
from responsa.observability import context
from responsa.protocol import embeddings as P


async def create(request: Request) -> Response:
    st = state(request)
    st.tenant(request)
    req = P.parse(await json_body(request, st.settings.max_body_bytes))
    embedder = lookup(st.registry, req.model)
    result = await embedder.create(req)
    obs = context.current()
    if obs is not None:
        obs.model, obs.input_tokens = embedder.model, obs.input_tokens + result.prompt_tokens
        if obs.accounting is not None:
            obs.accounting.tokens(result.prompt_tokens)
            obs.accounting.response(embedder.model, result.prompt_tokens, 0)
    body = orjson.dumps(P.response(req, embedder.model, result), option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, media_type="application/json")


routes = [Route("/v1/embeddings", create, methods=["POST"])]
