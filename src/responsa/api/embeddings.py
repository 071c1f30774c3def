"""``POST /v1/embeddings``: OpenAI's embeddings endpoint, served by the
model that ships with Responsa or passed to an upstream's.

The request is validated (``protocol.embeddings.parse``), the model name
resolved to an ``Embedder`` (``embeddings.lookup``), and the vectors come
back as OpenAI's ``list`` of ``embedding`` objects, floats or base64. Auth
and tenancy are every route's: the tenant is checked before anything runs
(embeddings store nothing, so there is no tenant data to separate).
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api.state import json_body, state
from responsa.embeddings import lookup
from responsa.protocol import embeddings as P


async def create(request: Request) -> Response:
    st = state(request)
    st.tenant(request)
    req = P.parse(await json_body(request, st.settings.max_body_bytes))
    embedder = lookup(st.registry, req.model)
    result = await embedder.create(req)
    body = orjson.dumps(P.response(req, embedder.model, result), option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, media_type="application/json")


routes = [Route("/v1/embeddings", create, methods=["POST"])]
