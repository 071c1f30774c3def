"""The web console at ``/console`` and the two list endpoints it reads.

The console is static files shipped in the package (``responsa/console/``:
plain HTML, CSS and ES modules, no build step, nothing from a CDN). It holds
no server-side session: the browser keeps the API key the person typed in
``sessionStorage`` and calls the public API with ``Authorization: Bearer``,
so a key sees exactly its own tenant, as through any other client.

``GET /v1/responses`` and ``GET /v1/conversations`` are ordinary API
endpoints (OpenAI lists chat completions the same way: cursor, ``limit``,
``order``, ``model``, ``metadata[key]=value``); they stay on when the
console is switched off (``console = false``), which only removes the pages.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api.lists import list_body, list_params
from responsa.api.responses import json_response
from responsa.api.state import state
from responsa.protocol.errors import invalid, not_found
from responsa.store.listing import ResponseFilter

STATUSES = ("queued", "in_progress", "completed", "failed", "incomplete", "cancelled")
_METADATA = re.compile(r"^metadata\[([^\]]+)\]$")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# Everything the page loads comes from this server; it talks only to this
# server; no inline script can run, so model output rendered into the page
# can never execute even if a rendering bug let markup through.
_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def _page(request: Request) -> tuple[str | None, int, Literal["asc", "desc"]]:
    """``after``/``limit``/``order`` by the one pagination rule (``api/lists.py``);
    these lists page newest first from a cursor, so ``before`` is refused."""
    if "before" in request.query_params:
        raise invalid("'before' is not supported on this list: page with 'after' (and 'order').", "before",
                      "unsupported_parameter")
    after, _, limit, order = list_params(request)
    return after, limit, order


def _reject_unknown(request: Request, known: set[str]) -> None:
    for key in request.query_params:
        if key not in known and not ("metadata" in known and _METADATA.match(key)):
            raise invalid(f"Unknown parameter: '{key}'.", key, "unknown_parameter")


def _filter(request: Request) -> ResponseFilter:
    q = request.query_params
    statuses: list[str] = []
    for value in q.getlist("status"):
        statuses += [s.strip() for s in value.split(",") if s.strip()]
    for s in statuses:
        if s not in STATUSES:
            raise invalid(f"Invalid 'status': {s!r}; expected one of {', '.join(STATUSES)}.", "status")
    background: bool | None = None
    if "background" in q:
        if q["background"] not in ("true", "false"):
            raise invalid("'background' must be 'true' or 'false'.", "background")
        background = q["background"] == "true"
    metadata: dict[str, str] = {}
    for key, value in q.multi_items():
        if m := _METADATA.match(key):
            metadata[m.group(1)] = value
    return ResponseFilter(model=q.get("model") or None, status=tuple(dict.fromkeys(statuses)), metadata=metadata,
                          background=background, conversation_id=q.get("conversation_id") or None,
                          previous_response_id=q.get("previous_response_id") or None,
                          id_prefix=q.get("id_prefix") or None)


async def list_responses(request: Request) -> Response:
    """The key's stored responses, newest first; each a full Response object."""
    _reject_unknown(request, {"after", "before", "limit", "order", "model", "status", "metadata", "background",
                              "conversation_id", "previous_response_id", "id_prefix"})
    st = state(request)
    tenant = st.tenant(request)
    after, limit, order = _page(request)
    page = await st.store.list_responses(tenant, after=after, limit=limit, order=order, where=_filter(request))
    return json_response(list_body(page.data, page.has_more))


async def list_conversations(request: Request) -> Response:
    _reject_unknown(request, {"after", "before", "limit", "order"})
    st = state(request)
    tenant = st.tenant(request)
    after, limit, order = _page(request)
    page = await st.store.list_conversations(tenant, after=after, limit=limit, order=order)
    return json_response(list_body(page.data, page.has_more))


@cache
def _assets() -> dict[str, tuple[bytes, str]]:
    """Every shipped file by name, read once; a name not in here is a 404
    (no path ever reaches the filesystem)."""
    folder = resources.files("responsa") / "console"
    found: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            found[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return found


def _serve(name: str) -> Response:
    asset = _assets().get(name)
    if asset is None:
        raise not_found(f"No console file {name!r}.")
    return Response(asset[0], media_type=asset[1], headers=_HEADERS)


async def index(request: Request) -> Response:
    if not state(request).settings.console:
        raise not_found("The console is switched off on this server (console = false).")
    return _serve("index.html")


async def asset(request: Request) -> Response:
    if not state(request).settings.console:
        raise not_found("The console is switched off on this server (console = false).")
    return _serve(request.path_params["name"])


routes = [
    Route("/v1/responses", list_responses, methods=["GET"]),
    Route("/v1/conversations", list_conversations, methods=["GET"]),
    Route("/console", index, methods=["GET"]),
    Route("/console/", index, methods=["GET"]),
    Route("/console/{name}", asset, methods=["GET"]),
]
