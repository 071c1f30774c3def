"""``/v1/models``: every configured provider's models as ``provider/model``."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api.responses import json_response
from responsa.api.state import state
from responsa.protocol.errors import not_found

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
        {"id": f"{name}/{model}", "object": "model", "created": 0, "owned_by": name}
        for name, models in zip(names, found, strict=True) for model in models]
    data += [{"id": alias, "object": "model", "created": 0, "owned_by": "alias"}
             for alias in st.settings.aliases]
    return data


async def list_models(request: Request) -> Response:
    state(request).tenant(request)
    return json_response({"object": "list", "data": await _models(request)})


async def get_model(request: Request) -> Response:
    state(request).tenant(request)
    wanted = request.path_params["model"]
    for model in await _models(request):
        if model["id"] == wanted:
            return json_response(model)
    raise not_found(f"The model '{wanted}' does not exist.", "model", "model_not_found")


routes = [Route("/v1/models", list_models, methods=["GET"]),
          Route("/v1/models/{model:path}", get_model, methods=["GET"])]
