"""``/v1/models``: every configured provider's models as ``provider/model``.

One object satisfies every client's ``Model`` type: OpenAI's (``id``,
``object``, ``created``, ``owned_by``), Dedalus' (``created_at`` as RFC
3339, ``provider``, ``capabilities``) and Anthropic's (``type: "model"``,
``display_name``, ``created_at``). Release dates are unknown for
self-hosted models: ``created``/``created_at`` are the Unix epoch.
``provider`` is the provider's configured name (``openai``, ``anthropic``
match the Dedalus type's list; ``test``/``local`` are outside it, which that
client, not validating responses, accepts)."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api.responses import json_response
from responsa.api.state import state
from responsa.embeddings import registry as embeddings
from responsa.embeddings.local import MAX_TOKENS
from responsa.protocol.errors import not_found
from responsa.providers.base import Capabilities

log = logging.getLogger("responsa.api")


async def _models(request: Request) -> list[dict[str, object]]:
    st = state(request)
    names = st.registry.names

    async def one(name: str) -> list[str]:
        try:
            return await asyncio.wait_for(st.registry.get(name).list_models(), 5)
        except Exception as exc:
            log.warning("listing models of provider %s failed: %s", name, exc)
            return st.settings.providers[name].models

    found = await asyncio.gather(*(one(n) for n in names))
    data: list[dict[str, object]] = [
        _model(f"{name}/{model}", name, _capabilities(st.registry.get(name).capabilities(model)))
        for name, models in zip(names, found, strict=True) for model in models]
    data += [_model(name, "local", _EMBEDDING_CAPABILITIES) for name in embeddings.LOCAL]
    data += [_model(alias, "alias", None) for alias in st.settings.aliases]
    return data


_EMBEDDING_CAPABILITIES: dict[str, object] = {
    "text": True, "streaming": False, "tools": False, "vision": False, "structured_output": False,
    "thinking": False, "input_token_limit": MAX_TOKENS, "embeddings": True}
"""The embedding models that ship with Responsa (``POST /v1/embeddings`` only)."""


def _capabilities(caps: Capabilities) -> dict[str, object]:
    return {"text": True, "streaming": True, "tools": caps.tools, "vision": caps.vision,
            "structured_output": caps.json_schema, "thinking": caps.reasoning,
            "input_token_limit": caps.context_window}


def _model(model_id: str, owner: str, capabilities: dict[str, object] | None) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner, "type": "model",
            "display_name": model_id, "created_at": _EPOCH, "provider": owner, "capabilities": capabilities}


_EPOCH = "1970-01-01T00:00:00Z"


def _anthropic(model: dict[str, object]) -> dict[str, object]:
    """An Anthropic ``ModelInfo`` (its ``capabilities`` object has another
    shape than Dedalus'; the ``anthropic`` SDK sends ``anthropic-version``)."""
    return {**{k: v for k, v in model.items() if k != "capabilities"}, "lifecycle": "active"}


async def list_models(request: Request) -> Response:
    state(request).tenant(request)
    data = await _models(request)
    if "anthropic-version" in request.headers:
        shown = [_anthropic(m) for m in data]
        return json_response({"data": shown, "has_more": False, "first_id": shown[0]["id"] if shown else None,
                              "last_id": shown[-1]["id"] if shown else None})
    return json_response({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    state(request).tenant(request)
    wanted = request.path_params["model"]
    for model in await _models(request):
        if model["id"] == wanted:
            return json_response(model)
    raise not_found(f"The model '{wanted}' does not exist.", "model", "model_not_found")


routes = [Route("/v1/models", list_models, methods=["GET"]),
          Route("/v1/models/{model:path}", get_model, methods=["GET"])]
