"""Every failure leaves the server in the OpenAI error shape; nothing
reaches a client as a traceback or an HTML page. The shape itself is
written once, in ``protocol.errors``."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from responsa.protocol.errors import ResponsaError, ServerError, body_for

log = logging.getLogger("responsa.api")


def error_response(exc: ResponsaError, path: str = "") -> Response:
    """``exc`` as a JSON response, in the error shape of the API ``path`` belongs to."""
    return Response(orjson.dumps(body_for(exc, path)), status_code=exc.status, media_type="application/json")


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ResponsaError)
    return error_response(exc, request.url.path)


def _route_hint(path: str, server: str) -> str:
    """The usual cause of a 404 on a real endpoint: a ``base_url`` with one
    ``/v1`` too many or too few (the ``openai`` client wants ``.../v1``, the
    ``dedalus_labs`` and Responsa clients want the bare server URL)."""
    if path.startswith("/v1/v1/"):
        return (f" Did you mean {path.removeprefix('/v1')}? The client's base_url probably ends in /v1 once too"
                " often: dedalus_labs and the Responsa client want the server URL without /v1"
                f" ({server}), the openai client wants it with /v1.")
    if path.split("/")[1:2] and path.split("/")[1] in ("responses", "conversations", "models", "prompts"):
        return (f" Did you mean /v1{path}? The client's base_url probably lacks /v1: the openai client wants"
                f" {server}/v1.")
    return ""


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    hint = _route_hint(path, str(request.base_url).rstrip("/"))
    message = exc.detail if exc.status_code != 404 else f"No route for {request.method} {path}.{hint}"
    if exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    return error_response(ResponsaError(str(message), status=exc.status_code,
                                        code="not_found" if exc.status_code == 404 else None), path)


async def unhandled(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(ServerError(), request.url.path)
