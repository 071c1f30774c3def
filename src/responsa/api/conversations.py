"""``/v1/conversations`` routes, wire-compatible with OpenAI's: the
conversation object, its metadata, and its items (added through the API or
appended by responses created with ``conversation``)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api.lists import list_body, list_params
from responsa.api.responses import json_response
from responsa.api.state import json_body, object_body, state
from responsa.engine.context import resolve_references
from responsa.protocol.errors import APIError, invalid, not_found
from responsa.protocol.ids import new_id
from responsa.protocol.items import normalize_input
from responsa.protocol.request import INCLUDE_VALUES, check_metadata_param
from responsa.protocol.types import Item
from responsa.store.base import Store
from responsa.tools.registry import INPUT_ITEMS

MAX_ITEMS_PER_CALL = 20


async def _items(store: Store, tenant: str, raw: Any, *, required: bool) -> list[Item]:
    """Validated items (at most 20, as OpenAI allows), references resolved."""
    if raw is None and not required:
        return []
    if not isinstance(raw, list):
        raise invalid("Invalid type for 'items': expected an array of items.", "items", "invalid_type")
    if required and not raw:
        raise invalid("'items' must not be empty.", "items", "empty_array")
    if len(raw) > MAX_ITEMS_PER_CALL:
        raise invalid(f"Invalid 'items': at most {MAX_ITEMS_PER_CALL} items can be added at a time, got "
                      f"{len(raw)}.", "items", "array_above_max_length")
    items = normalize_input(raw, "items", INPUT_ITEMS)
    await resolve_references(store, tenant, items, "items")
    return items


def _include(request: Request) -> None:
    """``include`` is accepted for compatibility: stored items already hold
    everything it can ask for. Unknown values are still rejected."""
    q = request.query_params
    for i, value in enumerate([*q.getlist("include"), *q.getlist("include[]")]):
        if value not in INCLUDE_VALUES:
            raise invalid(f"Invalid value for 'include': {value!r}.", f"include[{i}]")


def _missing(conversation_id: str) -> APIError:
    return not_found(f"Conversation with id '{conversation_id}' not found.", "conversation_id",
                     "conversation_not_found")


async def _conversation(request: Request) -> tuple[Store, str, dict[str, Any]]:
    st = state(request)
    tenant = st.tenant(request)
    cid = request.path_params["conversation_id"]
    found = await st.store.get_conversation(tenant, cid)
    if found is None:
        raise _missing(cid)
    return st.store, tenant, found


async def create(request: Request) -> Response:
    st = state(request)
    tenant = st.tenant(request)
    body = object_body(await json_body(request, st.settings.max_body_bytes), frozenset({"items", "metadata"}))
    metadata = check_metadata_param(body.get("metadata"))
    items = await _items(st.store, tenant, body.get("items"), required=False)
    conversation = {"id": new_id("conv"), "object": "conversation", "created_at": int(time.time()),
                    "metadata": metadata}
    await st.store.create_conversation(tenant, conversation, items)
    return json_response(conversation)


async def retrieve(request: Request) -> Response:
    _, _, conversation = await _conversation(request)
    return json_response(conversation)


async def update(request: Request) -> Response:
    st = state(request)
    tenant = st.tenant(request)
    cid = request.path_params["conversation_id"]
    body = object_body(await json_body(request, st.settings.max_body_bytes), frozenset({"metadata"}))
    if "metadata" not in body:
        raise invalid("Missing required parameter: 'metadata'.", "metadata", "missing_required_parameter")
    updated = await st.store.update_conversation(tenant, cid, check_metadata_param(body["metadata"]))
    if updated is None:
        raise _missing(cid)
    return json_response(updated)


async def delete(request: Request) -> Response:
    st = state(request)
    cid = request.path_params["conversation_id"]
    if not await st.store.delete_conversation(st.tenant(request), cid):
        raise _missing(cid)
    return json_response({"id": cid, "object": "conversation.deleted", "deleted": True})


async def list_items(request: Request) -> Response:
    st = state(request)
    cid = request.path_params["conversation_id"]
    _include(request)
    after, before, limit, order = list_params(request)
    if before is not None:
        raise invalid("'before' is not supported when listing conversation items: page with 'after'.", "before",
                      "unsupported_parameter")
    page = await st.store.list_conversation_items(st.tenant(request), cid, after=after, limit=limit, order=order)
    if page is None:
        raise _missing(cid)
    return json_response(list_body(page.data, page.has_more))


async def add_items(request: Request) -> Response:
    store, tenant, conversation = await _conversation(request)
    _include(request)
    body = object_body(await json_body(request, state(request).settings.max_body_bytes), frozenset({"items"}))
    items = await _items(store, tenant, body.get("items"), required=True)
    if not await store.append_conversation_items(tenant, conversation["id"], items):
        raise _missing(conversation["id"])
    return json_response(list_body(items, False))


async def get_item(request: Request) -> Response:
    store, tenant, conversation = await _conversation(request)
    _include(request)
    item_id = request.path_params["item_id"]
    item = await store.get_conversation_item(tenant, conversation["id"], item_id)
    if item is None:
        raise not_found(f"Item with id '{item_id}' not found in conversation '{conversation['id']}'.", "item_id",
                        "item_not_found")
    return json_response(item)


async def delete_item(request: Request) -> Response:
    store, tenant, conversation = await _conversation(request)
    item_id = request.path_params["item_id"]
    if not await store.delete_conversation_item(tenant, conversation["id"], item_id):
        raise not_found(f"Item with id '{item_id}' not found in conversation '{conversation['id']}'.", "item_id",
                        "item_not_found")
    return json_response(conversation)


routes = [
    Route("/v1/conversations", create, methods=["POST"]),
    Route("/v1/conversations/{conversation_id}", retrieve, methods=["GET"]),
    Route("/v1/conversations/{conversation_id}", update, methods=["POST"]),
    Route("/v1/conversations/{conversation_id}", delete, methods=["DELETE"]),
    Route("/v1/conversations/{conversation_id}/items", list_items, methods=["GET"]),
    Route("/v1/conversations/{conversation_id}/items", add_items, methods=["POST"]),
    Route("/v1/conversations/{conversation_id}/items/{item_id}", get_item, methods=["GET"]),
    Route("/v1/conversations/{conversation_id}/items/{item_id}", delete_item, methods=["DELETE"]),
]
