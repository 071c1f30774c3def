"""``/openapi.json`` (OpenAPI 3.1) and ``/docs``, generated at start-up from
the app's own routes and the models requests are validated with:

- the ``POST /v1/responses`` body is ``CreateResponse``'s JSON schema (the
  pydantic model ``parse_create`` validates with; ``extra: forbid`` shows as
  ``additionalProperties: false``), so the document cannot drift from
  validation;
- Response objects, items, streaming events and errors use the Open
  Responses spec's schemas (``openresponses.json``, cut from the spec the
  test suite validates every response with by
  ``scripts/vendor_spec_schemas.py``);
- every route of the app must have an entry in ``OPERATIONS``, or building
  the document fails (a route cannot ship undocumented).

``/docs`` is one self-contained HTML page (``docs.html``, no CDN, no
external asset) that renders the document.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from responsa import __version__
from responsa.api.responses import json_response
from responsa.protocol.errors import ANTHROPIC_PATHS
from responsa.protocol.request import CreateResponse

REF = "#/components/schemas/{}"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(name)}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_NSTR = {"type": ["string", "null"]}
_ANY_OBJ = {"type": "object"}
_METADATA = {"type": ["object", "null"], "additionalProperties": {"type": "string"}}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return _obj(["object", "data"], object={"const": "list"}, data={"type": "array", "items": item},
                first_id=_NSTR, last_id=_NSTR, has_more=_BOOL)


_COUNTS = _obj(["in_progress", "completed", "failed", "cancelled", "total"], in_progress=_INT, completed=_INT,
               failed=_INT, cancelled=_INT, total=_INT)
_EXPIRES = {"type": ["object", "null"], "required": ["anchor", "days"],
            "properties": {"anchor": {"const": "last_active_at"}, "days": {"type": "integer", "minimum": 1,
                                                                           "maximum": 365}}}
_CHUNKING = {"type": "object", "required": ["type"], "properties": {"type": {"enum": ["auto", "static"]},
                                                                    "static": _ANY_OBJ}}
_ATTRIBUTES = {"type": ["object", "null"], "additionalProperties": {"type": ["string", "number", "boolean"]}}
_VS_STATUS = {"enum": ["in_progress", "completed", "failed", "cancelled"]}
_VECTOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "VectorStore": _obj(["id", "object", "created_at", "name", "usage_bytes", "file_counts", "status"], id=_STR,
                        object={"const": "vector_store"}, created_at=_INT, name=_STR, usage_bytes=_INT,
                        file_counts=_COUNTS, status={"enum": ["expired", "in_progress", "completed"]},
                        expires_after=_EXPIRES, expires_at={"type": ["integer", "null"]},
                        last_active_at={"type": ["integer", "null"]}, metadata=_METADATA),
    "VectorStoreCreate": {**_obj([], name=_STR, description=_STR, metadata=_METADATA, expires_after=_EXPIRES,
                                 file_ids={"type": "array", "items": _STR}, chunking_strategy=_CHUNKING),
                          "additionalProperties": False},
    "VectorStoreUpdate": {**_obj([], name=_NSTR, metadata=_METADATA, expires_after=_EXPIRES),
                          "additionalProperties": False},
    "VectorStoreFile": _obj(["id", "object", "created_at", "vector_store_id", "status", "usage_bytes"], id=_STR,
                            object={"const": "vector_store.file"}, created_at=_INT, vector_store_id=_STR,
                            status=_VS_STATUS, usage_bytes=_INT, last_error={"type": ["object", "null"]},
                            chunking_strategy=_ANY_OBJ, attributes=_ATTRIBUTES),
    "VectorStoreFileCreate": {**_obj(["file_id"], file_id=_STR, attributes=_ATTRIBUTES, chunking_strategy=_CHUNKING),
                              "additionalProperties": False},
    "VectorStoreFileUpdate": {**_obj(["attributes"], attributes=_ATTRIBUTES), "additionalProperties": False},
    "VectorStoreFileBatch": _obj(["id", "object", "created_at", "vector_store_id", "status", "file_counts"], id=_STR,
                                 object={"const": "vector_store.files_batch"}, created_at=_INT,
                                 vector_store_id=_STR, status=_VS_STATUS, file_counts=_COUNTS),
    "VectorStoreFileBatchCreate": {**_obj([], file_ids={"type": "array", "items": _STR},
                                          files={"type": "array", "items": ref("VectorStoreFileCreate")},
                                          attributes=_ATTRIBUTES, chunking_strategy=_CHUNKING),
                                   "additionalProperties": False},
    "VectorStoreSearch": {**_obj(["query"], query={"type": ["string", "array"], "items": _STR},
                                 filters=_ANY_OBJ, max_num_results={"type": "integer", "minimum": 1, "maximum": 50},
                                 ranking_options=_obj([], ranker={"enum": ["none", "auto", "default-2024-11-15"]},
                                                      score_threshold={"type": "number", "minimum": 0,
                                                                       "maximum": 1},
                                                      hybrid_search=_obj(["embedding_weight", "text_weight"],
                                                                         embedding_weight={"type": "number"},
                                                                         text_weight={"type": "number"})),
                                 rewrite_query=_BOOL), "additionalProperties": False},
    "VectorStoreSearchResults": _obj(["object", "data"], object={"const": "vector_store.search_results.page"},
                                     search_query={"type": "array", "items": _STR}, has_more=_BOOL,
                                     next_page=_NSTR, data={"type": "array", "items": _obj(
                                         ["file_id", "filename", "score", "content"], file_id=_STR, filename=_STR,
                                         score={"type": "number"}, attributes=_ATTRIBUTES,
                                         content={"type": "array", "items": _obj(["type", "text"], type=_STR,
                                                                                  text=_STR)})}),
    "VectorStoreFileContent": _obj(["object", "data"], object={"const": "vector_store.file_content.page"},
                                   data={"type": "array", "items": _obj(["type", "text"], type=_STR, text=_STR)},
                                   has_more=_BOOL, next_page=_NSTR),
}


# Schemas Responsa defines itself (its own resources); the Open Responses
# ones come from openresponses.json.
OWN_SCHEMAS: dict[str, dict[str, Any]] = {
    **_VECTOR_SCHEMAS,
    "ErrorResponse": _obj(["error"], error=_obj(["message", "type"], message=_STR, type=_STR, param=_NSTR, code=_NSTR)),
    "AnthropicError": _obj(["type", "error"], type={"const": "error"},
                           error=_obj(["type", "message"], type=_STR, message=_STR)),
    "Deleted": _obj(["id", "object", "deleted"], id=_STR, object=_STR, deleted=_BOOL),
    "Item": {"type": "object", "required": ["type"], "properties": {"type": _STR, "id": _STR}},
    "ItemList": _list_of(ref("Item")),
    "Model": _obj(["id", "object"], id=_STR, object={"const": "model"}, created=_INT, owned_by=_STR),
    "ModelList": _obj(["object", "data"], object={"const": "list"}, data={"type": "array", "items": ref("Model")}),
    "Conversation": _obj(["id", "object", "created_at"], id=_STR, object={"const": "conversation"},
                         created_at=_INT, metadata=_METADATA),
    "ConversationCreate": {**_obj([], items={"type": "array", "items": _ANY_OBJ}, metadata=_METADATA),
                           "additionalProperties": False},
    "ConversationUpdate": {**_obj(["metadata"], metadata=_METADATA), "additionalProperties": False},
    "ConversationItemsCreate": {**_obj(["items"], items={"type": "array", "items": _ANY_OBJ}),
                                "additionalProperties": False},
    "Prompt": {"type": "object", "required": ["id"], "properties": {"id": _STR, "version": {}}},
    "PromptList": _list_of(ref("Prompt")),
    "PromptCreate": {"type": "object", "description": "A prompt: id, instructions/input template, variables."},
    "InputTokens": _obj(["object", "input_tokens"], object=_STR, input_tokens=_INT),
    "Compaction": {"type": "object", "description": "The compacted conversation: output items, usage."},
    "CompactRequest": {"type": "object", "description": "``model`` and the ``input``/``previous_response_id`` "
                                                        "to compact, as for POST /v1/responses."},
    "UsageReport": _obj(["object", "data", "totals"], object={"const": "list"}, totals=_ANY_OBJ, data={
        "type": "array", "items": _obj(
            ["date", "model", "requests", "input_tokens", "output_tokens", "total_tokens"], object=_STR, date=_STR,
            key_id=_NSTR, key_name=_NSTR, tenant=_STR, model=_STR, requests=_INT, input_tokens=_INT,
            output_tokens=_INT, total_tokens=_INT)}),
    "File": _obj(["id", "object", "bytes", "created_at", "filename", "purpose", "status"], id=_STR,
                 object={"const": "file"}, bytes=_INT, created_at=_INT, expires_at={"type": ["integer", "null"]},
                 filename=_STR, purpose=_STR, status={"enum": ["uploaded", "processed", "error"]},
                 status_details=_NSTR),
    "FileUpload": _obj(["file", "purpose"], file={"type": "string", "format": "binary"}, purpose={
        "enum": ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]},
        **{"expires_after[anchor]": {"const": "created_at"},
           "expires_after[seconds]": {"type": "integer", "minimum": 3600, "maximum": 2592000}}),
    "Health": _obj(["status"], status=_STR, version=_STR, pid=_INT),  # pid: which --workers process answered
    "Readiness": _obj(["status", "checks"], status={"enum": ["ready", "unavailable"]}, checks={
        "type": "object", "additionalProperties": _obj(["ok"], ok=_BOOL, latency_ms={"type": "number"},
                                                       error=_STR)}),
}


def _q(name: str, schema: dict[str, Any], description: str = "", *, where: str = "query",
       required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


def _path_params(path: str) -> list[dict[str, Any]]:
    out = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1].split(":")[0]
            out.append(_q(name, _STR, where="path"))
    return out


_PAGING = [_q("after", _STR, "cursor: an item id"), _q("before", _STR, "cursor: an item id"),
           _q("limit", {"type": "integer", "minimum": 1, "maximum": 100}), _q("order", {"enum": ["asc", "desc"]})]
_INCLUDE = [_q("include", {"type": "array", "items": _STR}), _q("include[]", {"type": "array", "items": _STR})]
_SSE = {"text/event-stream": {"schema": {"type": "string", "description": "Server-sent events: each `data:` is "
                                         "one of the streaming event schemas; the stream ends with `[DONE]`."}}}


_CHAT_REQUEST = {"type": "object", "required": ["model", "messages"], "description": "OpenAI's Chat "
                 "Completions request: model, messages, tools, stream, ...",
                 "properties": {"model": {}, "messages": {"type": "array"}, "stream": {"type": "boolean"}}}
_CHAT_COMPLETION = {"type": "object", "required": ["id", "object", "choices"], "properties": {
    "id": _STR, "object": {"const": "chat.completion"}, "created": _INT, "model": _STR,
    "choices": {"type": "array"}, "usage": {"type": ["object", "null"]}}}
_MESSAGES_REQUEST = {"type": "object", "required": ["model", "messages"], "description": "Anthropic's "
                     "Messages request: model, messages, max_tokens, system, tools, stream, ...",
                     "properties": {"model": _STR, "messages": {"type": "array"}, "max_tokens": _INT}}
_MESSAGE = {"type": "object", "required": ["id", "type", "role", "content", "stop_reason", "usage"], "properties": {
    "id": _STR, "type": {"const": "message"}, "role": {"const": "assistant"}, "model": _STR,
    "content": {"type": "array"}, "stop_reason": {"type": ["string", "null"]}, "usage": {"type": "object"}}}
_TOKENS = {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}}
_EMBEDDING_REQUEST = {"type": "object", "required": ["model", "input"], "additionalProperties": False, "properties": {
    "model": {"type": "string", "minLength": 1, "description": "local/all-minilm-l6-v2, or provider/model of an "
                                                               "upstream with an embeddings endpoint"},
    "input": {"anyOf": [{"type": "string", "minLength": 1},
                        {"type": "array", "minItems": 1, "maxItems": 2048, "items": {"type": "string", "minLength": 1}},
                        _TOKENS, {"type": "array", "minItems": 1, "maxItems": 2048, "items": _TOKENS}]},
    "encoding_format": {"enum": ["float", "base64"]}, "dimensions": {"type": "integer", "minimum": 1},
    "user": _STR}}
_EMBEDDING_LIST = _obj(["object", "data", "model", "usage"], object={"const": "list"}, model=_STR, data={
    "type": "array", "items": _obj(["object", "index", "embedding"], object={"const": "embedding"}, index=_INT,
                                   embedding={"anyOf": [{"type": "array", "items": {"type": "number"}},
                                                        {"type": "string", "description": "base64 float32 LE"}]})},
    usage=_obj(["prompt_tokens", "total_tokens"], prompt_tokens=_INT, total_tokens=_INT))
_HTML = {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}


@dataclass(frozen=True)
class Op:
    summary: str
    ok: dict[str, Any] | None = None
    """Schema of the 200 JSON body (``None``: no JSON body)."""
    body: dict[str, Any] | None = None
    params: list[dict[str, Any]] = field(default_factory=list)
    stream: bool = False
    auth: bool = True
    ok_status: int = 200
    body_type: str = "application/json"
    extra: dict[str, Any] = field(default_factory=dict)


_VS = "/v1/vector_stores/{vector_store_id}"
_VS_FILTER = _q("filter", {"enum": ["in_progress", "completed", "failed", "cancelled"]})
_VECTOR_OPERATIONS: dict[tuple[str, str], Op] = {
    ("POST", "/v1/vector_stores"): Op("Create a vector store", ref("VectorStore"), body=ref("VectorStoreCreate")),
    ("GET", "/v1/vector_stores"): Op("List vector stores, newest first", _list_of(ref("VectorStore")),
                                     params=_PAGING),
    ("GET", _VS): Op("Retrieve a vector store", ref("VectorStore")),
    ("POST", _VS): Op("Update a vector store", ref("VectorStore"), body=ref("VectorStoreUpdate")),
    ("DELETE", _VS): Op("Delete a vector store", ref("Deleted")),
    ("POST", f"{_VS}/search"): Op("Search a vector store (hybrid: vectors and keywords, fused)",
                                  ref("VectorStoreSearchResults"), body=ref("VectorStoreSearch")),
    ("POST", f"{_VS}/files"): Op("Add a file to a vector store (ingested in the background)",
                                 ref("VectorStoreFile"), body=ref("VectorStoreFileCreate")),
    ("GET", f"{_VS}/files"): Op("List a vector store's files", _list_of(ref("VectorStoreFile")),
                                params=[*_PAGING, _VS_FILTER]),
    ("GET", f"{_VS}/files/{{file_id}}"): Op("Retrieve a vector store file", ref("VectorStoreFile")),
    ("POST", f"{_VS}/files/{{file_id}}"): Op("Update a vector store file's attributes", ref("VectorStoreFile"),
                                            body=ref("VectorStoreFileUpdate")),
    ("DELETE", f"{_VS}/files/{{file_id}}"): Op("Remove a file from a vector store", ref("Deleted")),
    ("GET", f"{_VS}/files/{{file_id}}/content"): Op("A vector store file's chunks", ref("VectorStoreFileContent")),
    ("POST", f"{_VS}/file_batches"): Op("Add files to a vector store in one batch", ref("VectorStoreFileBatch"),
                                        body=ref("VectorStoreFileBatchCreate")),
    ("GET", f"{_VS}/file_batches/{{batch_id}}"): Op("Retrieve a file batch", ref("VectorStoreFileBatch")),
    ("POST", f"{_VS}/file_batches/{{batch_id}}/cancel"): Op("Cancel a file batch", ref("VectorStoreFileBatch")),
    ("GET", f"{_VS}/file_batches/{{batch_id}}/files"): Op("List a file batch's files",
                                                          _list_of(ref("VectorStoreFile")),
                                                          params=[*_PAGING, _VS_FILTER]),
}


OPERATIONS: dict[tuple[str, str], Op] = {
    **_VECTOR_OPERATIONS,
    ("GET", "/healthz"): Op("The process is alive", ref("Health"), auth=False),
    ("GET", "/health"): Op("Alias of /healthz", ref("Health"), auth=False),
    ("GET", "/readyz"): Op("Ready to serve: store, migrations, Redis, providers (503 names what failed)",
                           ref("Readiness"), auth=False, extra={"503": {"description": "Not ready", "content": {
                               "application/json": {"schema": ref("Readiness")}}}}),
    ("GET", "/metrics"): Op("Prometheus metrics (text exposition format)", None, auth=False,
                            extra={"200": {"description": "Metrics", "content": {"text/plain": {
                                "schema": {"type": "string"}}}}}),
    ("GET", "/openapi.json"): Op("This document", _ANY_OBJ, auth=False),
    ("GET", "/docs"): Op("The API documentation page (self-contained HTML)", None, auth=False,
                         extra={"200": {"description": "HTML", "content": {"text/html": {
                             "schema": {"type": "string"}}}}}),
    ("GET", "/v1/usage"): Op("Requests and tokens by API key, model and day", ref("UsageReport"), params=[
        _q("start_date", {"type": "string", "format": "date"}), _q("end_date", {"type": "string", "format": "date"}),
        _q("key_id", _STR, "admin keys only")]),
    ("POST", "/v1/responses"): Op("Create a response (JSON, or SSE with stream: true)", ref("ResponseResource"),
                                  body=ref("CreateResponse"), stream=True),
    ("GET", "/v1/responses/{response_id}"): Op(
        "Retrieve a response, or replay it as a stream", ref("ResponseResource"), stream=True,
        params=[_q("stream", {"enum": ["true", "false", "1", "0"]}), _q("starting_after", _INT), *_INCLUDE]),
    ("DELETE", "/v1/responses/{response_id}"): Op("Delete a response", ref("Deleted")),
    ("POST", "/v1/responses/{response_id}/cancel"): Op("Cancel a background response", ref("ResponseResource")),
    ("GET", "/v1/responses/{response_id}/input_items"): Op("List a response's input items", ref("ItemList"),
                                                           params=[*_PAGING, *_INCLUDE]),
    ("POST", "/v1/chat/completions"): Op(
        "Chat Completions front door (JSON, or chunk SSE with stream: true), run by the same engine",
        _CHAT_COMPLETION, body=_CHAT_REQUEST, stream=True),
    ("POST", "/v1/messages"): Op(
        "Anthropic Messages front door (JSON, or Anthropic stream events with stream: true), run by the same "
        "engine", _MESSAGE, body=_MESSAGES_REQUEST, stream=True),
    ("POST", "/v1/messages/count_tokens"): Op("Count the input tokens of a Messages request",
                                              {"type": "object", "required": ["input_tokens"],
                                               "properties": {"input_tokens": _INT}}, body=_MESSAGES_REQUEST),
    ("POST", "/v1/responses/compact"): Op("Compact a conversation into a compaction item", ref("Compaction"),
                                          body=ref("CompactRequest")),
    ("POST", "/v1/responses/input_tokens"): Op("Count the input tokens of a request", ref("InputTokens"),
                                               body=ref("CompactRequest")),
    ("POST", "/v1/embeddings"): Op("Create embeddings (OpenAI's endpoint): one vector per input",
                                   _EMBEDDING_LIST, body=_EMBEDDING_REQUEST),
    ("GET", "/v1/models"): Op("List models (provider/model)", ref("ModelList")),
    ("GET", "/v1/models/{model}"): Op("Retrieve a model", ref("Model")),
    ("GET", "/v1/responses"): Op("List stored responses, newest first (the console reads it)",
                                 _list_of(ref("ResponseResource")), params=[
        *_PAGING, _q("model", _STR), _q("status", {"type": "array", "items": _STR}), _q("background", _STR),
        _q("conversation_id", _STR), _q("previous_response_id", _STR), _q("id_prefix", _STR)]),
    ("GET", "/v1/conversations"): Op("List conversations, newest first", _list_of(ref("Conversation")),
                                     params=_PAGING),
    ("GET", "/console"): Op("The web console (static page)", None, auth=False, extra=_HTML),
    ("GET", "/console/"): Op("The web console (static page)", None, auth=False, extra=_HTML),
    ("GET", "/console/{name}"): Op("A console asset (HTML, CSS, JS, SVG)", None, auth=False, extra={
        "200": {"description": "The asset", "content": {"text/html": {"schema": _STR}, "text/css": {"schema": _STR},
                                                        "text/javascript": {"schema": _STR},
                                                        "image/svg+xml": {"schema": _STR}}}}),
    ("POST", "/v1/conversations"): Op("Create a conversation", ref("Conversation"), body=ref("ConversationCreate")),
    ("GET", "/v1/conversations/{conversation_id}"): Op("Retrieve a conversation", ref("Conversation")),
    ("POST", "/v1/conversations/{conversation_id}"): Op("Update a conversation's metadata", ref("Conversation"),
                                                        body=ref("ConversationUpdate")),
    ("DELETE", "/v1/conversations/{conversation_id}"): Op("Delete a conversation", ref("Deleted")),
    ("GET", "/v1/conversations/{conversation_id}/items"): Op("List a conversation's items", ref("ItemList"),
                                                             params=[*_PAGING, *_INCLUDE]),
    ("POST", "/v1/conversations/{conversation_id}/items"): Op("Add items to a conversation", ref("ItemList"),
                                                              body=ref("ConversationItemsCreate"),
                                                              params=_INCLUDE),
    ("GET", "/v1/conversations/{conversation_id}/items/{item_id}"): Op("Retrieve an item", ref("Item"),
                                                                       params=_INCLUDE),
    ("DELETE", "/v1/conversations/{conversation_id}/items/{item_id}"): Op("Delete an item", ref("Conversation")),
    ("POST", "/v1/prompts"): Op("Create a prompt (version 1)", ref("Prompt"), body=ref("PromptCreate")),
    ("GET", "/v1/prompts"): Op("List prompts", ref("PromptList"), params=_PAGING),
    ("GET", "/v1/prompts/{prompt_id}"): Op("Retrieve a prompt (latest or ?version=)", ref("Prompt"),
                                           params=[_q("version", {"type": "integer", "minimum": 1})]),
    ("DELETE", "/v1/prompts/{prompt_id}"): Op("Delete a prompt", ref("Deleted")),
    ("GET", "/v1/prompts/{prompt_id}/versions"): Op("List a prompt's versions", ref("PromptList"), params=_PAGING),
    ("POST", "/v1/prompts/{prompt_id}/versions"): Op("Add a prompt version", ref("Prompt"),
                                                     body=ref("PromptCreate")),
    ("POST", "/v1/files"): Op("Upload a file (multipart: file, purpose, optional expires_after)", ref("File"),
                              body=ref("FileUpload"), body_type="multipart/form-data"),
    ("GET", "/v1/files"): Op("List files, newest first", _list_of(ref("File")), params=[
        _q("after", _STR, "cursor: a file id"), _q("limit", {"type": "integer", "minimum": 1, "maximum": 10000}),
        _q("order", {"enum": ["asc", "desc"]}), _q("purpose", _STR)]),
    ("GET", "/v1/files/{file_id}"): Op("Retrieve a file", ref("File")),
    ("DELETE", "/v1/files/{file_id}"): Op("Delete a file and its content", ref("Deleted")),
    ("GET", "/v1/files/{file_id}/content"): Op("Download a file's content", None, extra={"200": {
        "description": "The file's bytes", "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}}}),
}

WEBSOCKET = {"/v1/responses": {
    "description": "WebSocket mode: GET /v1/responses upgraded (Authorization: Bearer). Each client frame is "
                   "{\"type\": \"response.create\", ...CreateResponse without stream/background}; server frames "
                   "are the streaming events, one terminal event per turn, or an error frame.",
    "clientMessage": ref("CreateResponse"), "errorMessage": ref("ErrorResponse")}}


def _operation(method: str, path: str, op: Op) -> dict[str, Any]:
    ok: dict[str, Any] = {}
    if op.ok is not None:
        ok["application/json"] = {"schema": op.ok}
    if op.stream:
        ok.update(_SSE)
    responses: dict[str, Any] = {str(op.ok_status): {"description": "OK", "content": ok}} if ok else {}
    responses.update(op.extra)
    shape, error = ("Anthropic", ref("AnthropicError")) if path.startswith(ANTHROPIC_PATHS) else \
        ("OpenAI", ref("ErrorResponse"))
    responses["default"] = {"description": f"An error in the {shape} shape (4xx, or 5xx for a server fault)",
                            "content": {"application/json": {"schema": error}}}
    if op.auth:
        responses["429"] = {"description": "A per-key limit: Retry-After and x-ratelimit-* headers",
                            "content": {"application/json": {"schema": error}}}
    out: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(method, path),
                           "parameters": [*_path_params(path), *op.params], "responses": responses}
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {op.body_type: {"schema": op.body}}}
    if not op.auth:
        out["security"] = []
    return out


def _operation_id(method: str, path: str) -> str:
    words = [p.strip("{}").split(":")[0] for p in path.strip("/").split("/") if p]
    return method.lower() + "_" + "_".join(words).replace(".", "_")


def _doc_path(path: str) -> str:
    """Starlette's ``{model:path}`` is OpenAPI's ``{model}``."""
    return "/".join(p.split(":")[0] + "}" if p.startswith("{") and ":" in p else p for p in path.split("/"))


def undocumented(routes: list[BaseRoute]) -> list[str]:
    """Routes of the app without an ``OPERATIONS`` entry (must be none)."""
    missing = []
    for route in routes:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                if (method, _doc_path(route.path)) not in OPERATIONS:
                    missing.append(f"{method} {route.path}")
        elif isinstance(route, WebSocketRoute) and route.path not in WEBSOCKET:
            missing.append(f"WEBSOCKET {route.path}")
    return missing


@functools.cache
def _spec_schemas() -> dict[str, Any]:
    raw = resources.files("responsa.api").joinpath("openresponses.json").read_text()
    schemas: dict[str, Any] = json.loads(raw)["schemas"]
    return schemas


def build(routes: list[BaseRoute]) -> dict[str, Any]:
    missing = undocumented(routes)
    if missing:
        raise RuntimeError(f"routes without an OpenAPI description: {missing}")
    request_schema = CreateResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = request_schema.pop("$defs", {})
    spec = _spec_schemas()
    clash = (set(spec) & set(defs)) | ((set(spec) | set(defs)) & {"CreateResponse", *OWN_SCHEMAS})
    if clash:
        raise RuntimeError(f"schema names defined twice: {sorted(clash)}")
    schemas = {**spec, **defs, "CreateResponse": request_schema, **OWN_SCHEMAS}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                path = _doc_path(route.path)
                paths.setdefault(path, {})[method.lower()] = _operation(method, path, OPERATIONS[(method, path)])
        elif isinstance(route, WebSocketRoute):
            paths.setdefault(route.path, {})["x-websocket"] = WEBSOCKET[route.path]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Responsa", "version": __version__,
                 "description": "A self-hostable OpenAI Responses API server for any model."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
    }


def routes_for(app_routes: list[BaseRoute]) -> list[BaseRoute]:
    """The two routes, bound to the app's route list (built on first request)."""
    mine: list[BaseRoute] = []

    @functools.cache
    def document() -> bytes:
        return json.dumps(build([*app_routes, *mine])).encode()

    async def openapi(request: Request) -> Response:
        return Response(document(), media_type="application/json")

    async def docs(request: Request) -> Response:
        return HTMLResponse(resources.files("responsa.api").joinpath("docs.html").read_text())

    mine.extend([Route("/openapi.json", openapi, methods=["GET"]), Route("/docs", docs, methods=["GET"])])
    return mine


__all__ = ["OPERATIONS", "build", "json_response", "routes_for", "undocumented"]
