"""Ids are checked where they enter: no id may contain a NUL character.

PostgreSQL's ``text`` cannot hold NUL, so an id with ``%00`` in a path or
``\\u0000`` in a body made the driver raise (a 500 with a traceback on 11
routes) where SQLite simply found nothing. No id this server issues
contains NUL, so such an id names nothing: a lookup answers exactly what an
unknown id answers (404 with the route's code), a new item's id is a 400.
Checking here, once, keeps every store backend and every route honest
without each of them knowing about it.

- ``NulGuard``: ASGI middleware for the path (404) and the query string
  (400 naming the parameter), HTTP and WebSocket alike.
- ``check_ids``: a decoded JSON body (or WebSocket frame). Linear, and
  skipped entirely unless the raw body contains an escaped NUL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from responsa.protocol.errors import APIError, body_for, invalid, not_found

_LOOKUPS = {"previous_response_id": ("Previous response", "previous_response_not_found"),
            "conversation": ("Conversation", "conversation_not_found"),
            "prompt.id": ("Prompt", "prompt_not_found")}


def might_hold_nul(raw: bytes | str) -> bool:
    """Cheap pre-check on a raw JSON text (JSON can only carry NUL escaped)."""
    if isinstance(raw, str):
        return "\\u0000" in raw or "\x00" in raw
    return b"\\u0000" in raw or b"\x00" in raw


def _unknown(param: str, value: str) -> APIError:
    what, code = _LOOKUPS[param]
    return not_found(f"{what} with id {value!r} not found.", param, code)


def _walk(value: Any, param: str, key: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, f"{param}.{k}" if param else str(k), str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk(v, f"{param}[{i}]", key)
    elif isinstance(value, str) and "\x00" in value and (key == "id" or key.endswith("_id")):
        raise invalid(f"Invalid '{param}': ids cannot contain NUL characters.", param, "invalid_value")


def check_ids(body: Any) -> None:
    """Raise the 404 an unknown id gets (lookups) or a 400 (ids being
    created) for any id in ``body`` that contains NUL."""
    if not isinstance(body, dict):
        return
    prev = body.get("previous_response_id")
    if isinstance(prev, str) and "\x00" in prev:
        raise _unknown("previous_response_id", prev)
    conv = body.get("conversation")
    conv_id = conv.get("id") if isinstance(conv, dict) else conv
    if isinstance(conv_id, str) and "\x00" in conv_id:
        raise _unknown("conversation", conv_id)
    prompt = body.get("prompt")
    if isinstance(prompt, dict) and isinstance(prompt.get("id"), str) and "\x00" in prompt["id"]:
        raise _unknown("prompt.id", prompt["id"])
    for field in ("input", "items"):
        items = body.get(field)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if isinstance(item, dict) and item.get("type") == "item_reference" and isinstance(item.get("id"), str) \
                    and "\x00" in item["id"]:
                raise not_found(f"Item with id {item['id']!r} not found.", f"{field}[{i}].id", "item_not_found")
    _walk(body, "", "")


def check_raw(raw: bytes | str, body: Any) -> None:
    """``check_ids`` when the raw text may hold a NUL (almost never: free)."""
    if might_hold_nul(raw):
        check_ids(body)


class NulGuard:
    """Refuse NUL in the path (404) or the query string (400) before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        error: APIError | None = None
        path: str = scope.get("path", "")
        if "\x00" in path:
            error = not_found(f"No object at {path.replace(chr(0), '%00')!r}: ids cannot contain NUL characters.")
        else:
            query: bytes = scope.get("query_string", b"")
            if b"%00" in query or b"\x00" in query:
                for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                    if "\x00" in name or "\x00" in value:
                        param = name.replace("\x00", "%00")
                        error = invalid(f"Invalid value for query parameter {param!r}: NUL characters are not "
                                        "allowed.", param, "invalid_value")
                        break
        if error is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": error.message[:120]})
            return
        body = orjson.dumps(body_for(error, path))
        await send({"type": "http.response.start", "status": error.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
