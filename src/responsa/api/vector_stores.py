"""``/v1/vector_stores`` routes, wire-compatible with OpenAI's: vector
stores, their files (attributes, content), file batches and search. The
routes only translate HTTP to ``VectorStores`` calls
(``responsa.vectorstores``), which validate everything and keep every
object per tenant.

``rewrite_query: true`` is a 400: rewriting needs a model that turns the
question into search terms, which this server does not run for searches;
send the query to search for.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api.lists import list_body, list_params
from responsa.api.responses import json_response
from responsa.api.state import json_body, object_body, state
from responsa.protocol.errors import invalid
from responsa.vectorstores import VectorStores

CREATE_KEYS = frozenset({"name", "description", "metadata", "expires_after", "file_ids", "chunking_strategy"})
UPDATE_KEYS = frozenset({"name", "metadata", "expires_after"})
FILE_KEYS = frozenset({"file_id", "attributes", "chunking_strategy"})
BATCH_KEYS = frozenset({"file_ids", "files", "attributes", "chunking_strategy"})
SEARCH_KEYS = frozenset({"query", "filters", "max_num_results", "ranking_options", "rewrite_query"})


async def _call(request: Request, keys: frozenset[str] | None = None) -> tuple[VectorStores, str, dict[str, Any]]:
    """The service, the tenant and (with ``keys``) the JSON body."""
    st = state(request)
    body: dict[str, Any] = {}
    if keys is not None:
        body = object_body(await json_body(request, st.settings.max_body_bytes), keys)
    return st.vector_stores, st.tenant(request), body


POLL_AFTER_MS = "200"
"""``openai-poll-after-ms`` on objects still in progress: how soon the SDK's
``*_and_poll`` helpers look again (OpenAI sends the same header)."""


def _polled(obj: dict[str, Any]) -> Response:
    response = json_response(obj)
    if obj.get("status") == "in_progress":
        response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return response


def _path(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    return value


async def create(request: Request) -> Response:
    vs, tenant, body = await _call(request, CREATE_KEYS)
    return json_response(await vs.create(tenant, body))


async def list_stores(request: Request) -> Response:
    vs, tenant, _ = await _call(request)
    after, before, limit, order = list_params(request)
    data, more = await vs.list_stores(tenant, after=after, before=before, limit=limit, order=order)
    return json_response(list_body(data, more))


async def retrieve(request: Request) -> Response:
    vs, tenant, _ = await _call(request)
    return json_response(await vs.retrieve(tenant, _path(request, "vector_store_id")))


async def update(request: Request) -> Response:
    vs, tenant, body = await _call(request, UPDATE_KEYS)
    return json_response(await vs.update(tenant, _path(request, "vector_store_id"), body))


async def delete(request: Request) -> Response:
    vs, tenant, _ = await _call(request)
    return json_response(await vs.delete(tenant, _path(request, "vector_store_id")))


async def search(request: Request) -> Response:
    vs, tenant, body = await _call(request, SEARCH_KEYS)
    rewrite = body.get("rewrite_query", False)
    if not isinstance(rewrite, bool):
        raise invalid("Invalid type for 'rewrite_query': expected a boolean.", "rewrite_query", "invalid_type")
    if rewrite:
        raise invalid("'rewrite_query' is not supported by this server (no model rewrites search queries); send "
                      "the query to search for with rewrite_query false.", "rewrite_query", "unsupported_parameter")
    if "query" not in body:
        raise invalid("Missing required parameter: 'query'.", "query", "missing_required_parameter")
    hits = await vs.search(tenant, [_path(request, "vector_store_id")], body["query"],
                           max_num_results=body.get("max_num_results", 10), filters=body.get("filters"),
                           ranking_options=body.get("ranking_options"))
    query = body["query"]
    return json_response({"object": "vector_store.search_results.page",
                          "search_query": [query] if isinstance(query, str) else query,
                          "data": [h.as_result() for h in hits], "has_more": False, "next_page": None})


async def add_file(request: Request) -> Response:
    vs, tenant, body = await _call(request, FILE_KEYS)
    return json_response(await vs.add_file(tenant, _path(request, "vector_store_id"), body.get("file_id"),
                                           attributes=body.get("attributes"),
                                           chunking_strategy=body.get("chunking_strategy")))


def _status_filter(request: Request) -> str | None:
    return request.query_params.get("filter")


async def list_files(request: Request) -> Response:
    vs, tenant, _ = await _call(request)
    after, before, limit, order = list_params(request)
    data, more = await vs.list_files(tenant, _path(request, "vector_store_id"), after=after, before=before,
                                     limit=limit, order=order, status=_status_filter(request))
    return json_response(list_body(data, more))


async def get_file(request: Request) -> Response:
    vs, tenant, _ = await _call(request)
    return _polled(await vs.get_file(tenant, _path(request, "vector_store_id"), _path(request, "file_id")))


async def update_file(request: Request) -> Response:
    vs, tenant, body = await _call(request, frozenset({"attributes"}))
    if "attributes" not in body:
        raise invalid("Missing required parameter: 'attributes'.", "attributes", "missing_required_parameter")
    return json_response(await vs.update_file(tenant, _path(request, "vector_store_id"), _path(request, "file_id"),
                                              body["attributes"]))


async def delete_file(request: Request) -> Response:
    vs, tenant, _ = await _call(request)
    return json_response(await vs.delete_file(tenant, _path(request, "vector_store_id"), _path(request, "file_id")))


async def file_content(request: Request) -> Response:
    vs, tenant, _ = await _call(request)
    data = await vs.file_content(tenant, _path(request, "vector_store_id"), _path(request, "file_id"))
    return json_response({"object": "vector_store.file_content.page", "data": data, "has_more": False,
                          "next_page": None})


async def create_batch(request: Request) -> Response:
    vs, tenant, body = await _call(request, BATCH_KEYS)
    return json_response(await vs.create_batch(tenant, _path(request, "vector_store_id"), body))


async def get_batch(request: Request) -> Response:
    vs, tenant, _ = await _call(request)
    return _polled(await vs.get_batch(tenant, _path(request, "vector_store_id"), _path(request, "batch_id")))


async def cancel_batch(request: Request) -> Response:
    vs, tenant, _ = await _call(request)
    return json_response(await vs.cancel_batch(tenant, _path(request, "vector_store_id"),
                                               _path(request, "batch_id")))


async def list_batch_files(request: Request) -> Response:
    vs, tenant, _ = await _call(request)
    vid, bid = _path(request, "vector_store_id"), _path(request, "batch_id")
    await vs.get_batch(tenant, vid, bid)
    after, before, limit, order = list_params(request)
    data, more = await vs.list_files(tenant, vid, after=after, before=before, limit=limit, order=order,
                                     status=_status_filter(request), batch_id=bid)
    return json_response(list_body(data, more))


_VS = "/v1/vector_stores/{vector_store_id}"
routes = [
    Route("/v1/vector_stores", create, methods=["POST"]),
    Route("/v1/vector_stores", list_stores, methods=["GET"]),
    Route(_VS, retrieve, methods=["GET"]),
    Route(_VS, update, methods=["POST"]),
    Route(_VS, delete, methods=["DELETE"]),
    Route(f"{_VS}/search", search, methods=["POST"]),
    Route(f"{_VS}/files", add_file, methods=["POST"]),
    Route(f"{_VS}/files", list_files, methods=["GET"]),
    Route(f"{_VS}/files/{{file_id}}", get_file, methods=["GET"]),
    Route(f"{_VS}/files/{{file_id}}", update_file, methods=["POST"]),
    Route(f"{_VS}/files/{{file_id}}", delete_file, methods=["DELETE"]),
    Route(f"{_VS}/files/{{file_id}}/content", file_content, methods=["GET"]),
    Route(f"{_VS}/file_batches", create_batch, methods=["POST"]),
    Route(f"{_VS}/file_batches/{{batch_id}}", get_batch, methods=["GET"]),
    Route(f"{_VS}/file_batches/{{batch_id}}/cancel", cancel_batch, methods=["POST"]),
    Route(f"{_VS}/file_batches/{{batch_id}}/files", list_batch_files, methods=["GET"]),
]
