"""``/v1/prompts``: the server-side library of reusable prompt templates
that ``responses.create(prompt={"id", "version", "variables"})`` renders
(the seeding from ``prompts_dir`` is the engine's: ``engine.prompts.seed``).

Versioned: creating a prompt makes version "1", every change adds a version
and no version is ever modified, so a client pinned to a version keeps
getting exactly what it tested. Prompts seeded from ``prompts_dir`` at
start-up belong to the server: every tenant can use them, none can change
them; editing a seed file adds a new version at the next start.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api.lists import list_body, list_params
from responsa.api.responses import json_response
from responsa.api.state import json_body, state
from responsa.engine.prompts import PROMPT_ID, template
from responsa.protocol.errors import APIError, invalid, not_found
from responsa.protocol.ids import new_id
from responsa.protocol.request import whole_number
from responsa.store import paging
from responsa.store.base import Page, Store

log = logging.getLogger("responsa.prompts")



def _missing(prompt_id: str) -> APIError:
    return not_found(f"Prompt with id '{prompt_id}' not found.", "prompt_id", "prompt_not_found")


def _window(data: list[dict[str, Any]], request: Request, key: str) -> Page:
    """The list endpoints' one pagination rule (``store.paging``) over a list
    kept oldest first; the cursors are the entries' ``key`` (``id`` for
    prompts, ``version`` for one prompt's versions)."""
    after, before, limit, order = list_params(request)
    return paging.window(data, after=after, before=before, limit=limit, order=order, key=key)


async def _writable(store: Store, tenant: str, prompt_id: str) -> None:
    owner = await store.prompt_owner(tenant, prompt_id)
    if owner is None:
        raise _missing(prompt_id)
    if owner != tenant:
        raise APIError(f"Prompt '{prompt_id}' is defined by the server's prompts_dir and is read-only.",
                       status=403, type="permission_error", param="prompt_id", code="prompt_read_only")


async def create(request: Request) -> Response:
    st = state(request)
    tenant = st.tenant(request)
    body = await json_body(request, st.settings.max_body_bytes)
    pid = body.get("id") if isinstance(body, dict) else None
    if pid is None:
        pid = new_id("pmpt")
    elif not isinstance(pid, str) or not PROMPT_ID.match(pid):
        raise invalid("Invalid 'id': 1-128 characters of a-z, A-Z, 0-9, '_', '-' or '.'.", "id")
    created = await st.store.create_prompt(tenant, template(body, pid))
    if created is None:
        raise APIError(f"A prompt with id '{pid}' already exists: add a version with POST "
                       f"/v1/prompts/{pid}/versions.", status=409, param="id", code="prompt_exists")
    return json_response(created)


async def add_version(request: Request) -> Response:
    st = state(request)
    tenant = st.tenant(request)
    pid = request.path_params["prompt_id"]
    body = await json_body(request, st.settings.max_body_bytes)
    if isinstance(body, dict) and body.get("id", pid) != pid:
        raise invalid("'id' must match the prompt in the path (or be left out).", "id")
    prompt = template(body, pid)
    await _writable(st.store, tenant, pid)
    added = await st.store.add_prompt_version(tenant, prompt)
    if added is None:
        raise _missing(pid)
    return json_response(added)


async def list_prompts(request: Request) -> Response:
    st = state(request)
    page = _window(await st.store.list_prompts(st.tenant(request)), request, "id")
    return json_response(list_body(page.data, page.has_more))


async def retrieve(request: Request) -> Response:
    st = state(request)
    pid = request.path_params["prompt_id"]
    raw = request.query_params.get("version")
    version = None if raw is None else whole_number(raw)
    if raw is not None and not (version and version >= 1):
        raise invalid("'version' must be a version number such as 2.", "version")
    found = await st.store.get_prompt(st.tenant(request), pid, version)
    if found is None:
        if raw is not None:
            raise not_found(f"Prompt '{pid}' has no version {raw}.", "version", "prompt_version_not_found")
        raise _missing(pid)
    return json_response(found)


async def versions(request: Request) -> Response:
    st = state(request)
    pid = request.path_params["prompt_id"]
    found = await st.store.list_prompt_versions(st.tenant(request), pid)
    if not found:
        raise _missing(pid)
    page = _window(found, request, "version")
    return json_response(list_body(page.data, page.has_more, key="version"))


async def delete(request: Request) -> Response:
    st = state(request)
    tenant = st.tenant(request)
    pid = request.path_params["prompt_id"]
    await _writable(st.store, tenant, pid)
    if not await st.store.delete_prompt(tenant, pid):
        raise _missing(pid)
    return json_response({"id": pid, "object": "prompt.deleted", "deleted": True})


routes = [
    Route("/v1/prompts", create, methods=["POST"]),
    Route("/v1/prompts", list_prompts, methods=["GET"]),
    Route("/v1/prompts/{prompt_id}", retrieve, methods=["GET"]),
    Route("/v1/prompts/{prompt_id}", delete, methods=["DELETE"]),
    Route("/v1/prompts/{prompt_id}/versions", versions, methods=["GET"]),
    Route("/v1/prompts/{prompt_id}/versions", add_version, methods=["POST"]),
]
