"""Request-shape rules that need nothing but the request: the forms of
``model``, ``tool_choice``, ``conversation``, background mode, and a
WebSocket ``response.create`` frame. Each failure is a 400 naming the
exact parameter. (What needs the store or the provider registry, e.g.
whether a model or a previous response exists, is checked by the engine.)"""

from __future__ import annotations

from typing import Any

import orjson

from responsa.protocol.errors import invalid
from responsa.protocol.params import check_background as _check_background_options
from responsa.protocol.request import CreateResponse

# Upstream body keys the adapters own: ``settings`` are merged into the
# upstream request last, so letting them through would let a client swap the
# model, break the stream it is parsed from, or make the upstream store data.
RESERVED_SETTINGS = frozenset({"model", "messages", "input", "system", "stream", "stream_options", "store",
                                "tools", "tool_choice", "instructions", "previous_response_id", "background",
                                "conversation", "include"})



def model_entries(raw: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """The reference client's ``model`` forms (a string, ``{model, settings}``,
    or a list used as an ordered fallback chain) as ``(param, name, settings)``."""
    entries = raw if isinstance(raw, list) else [raw]
    if not entries:
        raise invalid("'model' must not be an empty list.", "model", "empty_array")
    out = []
    for i, entry in enumerate(entries):
        param = f"model[{i}]" if isinstance(raw, list) else "model"
        settings: dict[str, Any] = {}
        if isinstance(entry, dict):
            name = entry.get("model") or entry.get("name")
            settings = entry.get("settings") or {}
            if not isinstance(settings, dict):
                raise invalid(f"'{param}.settings' must be an object.", f"{param}.settings", "invalid_type")
            clash = sorted(RESERVED_SETTINGS.intersection(settings))
            if clash:
                raise invalid(f"'{param}.settings.{clash[0]}' cannot be set: Responsa builds that part of the "
                              "upstream request itself.", f"{param}.settings.{clash[0]}", "unsupported_parameter")
        else:
            name = entry
        if not isinstance(name, str) or not name:
            raise invalid(f"'{param}' must name a model, e.g. 'openai/gpt-4o-mini' or 'test/echo'.", param,
                          "invalid_type")
        out.append((param, name, settings))
    return out


def tool_choice(choice: Any, names: set[str], *, server_tools: bool) -> Any:
    """``tool_choice`` checked against the request's function tool ``names``,
    in its canonical form; ``server_tools``: the request has tools the server
    runs (``required`` is then satisfiable)."""
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise invalid(f"Invalid value for 'tool_choice': {choice!r}. Supported values are 'none', "
                          "'auto' and 'required', or a tool object.", "tool_choice")
        if choice == "required" and not names and not server_tools:
            raise invalid("'tool_choice' is 'required' but no tools were given.", "tool_choice")
        return choice
    ctype = choice.get("type")
    if ctype == "function":
        if not isinstance(choice.get("name"), str) or choice["name"] not in names:
            raise invalid(f"Tool choice names function {choice.get('name')!r}, which is not in 'tools'.",
                          "tool_choice.name")
        return {"type": "function", "name": choice["name"]}
    if ctype == "allowed_tools":
        mode = choice.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise invalid("'tool_choice.mode' must be 'auto' or 'required'.", "tool_choice.mode")
        allowed = choice.get("tools")
        if not isinstance(allowed, list) or not allowed:
            raise invalid("'tool_choice.tools' must be a non-empty array.", "tool_choice.tools")
        for j, t in enumerate(allowed):
            if not isinstance(t, dict) or not isinstance(t.get("name"), str) or t["name"] not in names:
                raise invalid(f"'tool_choice.tools[{j}]' names a tool that is not in 'tools'.",
                              f"tool_choice.tools[{j}]")
        return {"type": "allowed_tools", "mode": mode,
                "tools": [{"type": "function", "name": t["name"]} for t in allowed]}
    raise invalid(f"Invalid value for 'tool_choice.type': {ctype!r}.", "tool_choice.type")


def conversation_id(req: CreateResponse) -> str | None:
    """The conversation a request continues (``"conv_..."`` or ``{"id": ...}``)."""
    conv = req.conversation
    if conv is None:
        return None
    cid = conv.get("id") if isinstance(conv, dict) else conv
    if not isinstance(cid, str) or not cid:
        raise invalid("Invalid 'conversation': expected a conversation id or an object {\"id\": ...}.",
                      "conversation", "invalid_type")
    if req.previous_response_id is not None:
        raise invalid("'conversation' and 'previous_response_id' cannot be used together: a conversation "
                      "already carries the history.", "conversation", "invalid_value")
    return cid


def check_background(req: CreateResponse) -> None:
    if req.background and req.store is False:
        raise invalid("Background mode requires 'store' to be true: a background response is polled, resumed "
                      "and cancelled through its stored record.", "background")
    _check_background_options(req.background, req.stream, req.background_options)


WS_FORBIDDEN = ("stream", "stream_options", "background")
"""Request keys a WebSocket ``response.create`` frame may not carry: every turn is streamed, on the socket."""


def websocket_frame(raw: str | bytes | None) -> Any:
    """A WebSocket text frame's JSON."""
    try:
        return orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise invalid(f"The message is not valid JSON: {exc}.", None, "invalid_json") from None


def websocket_create(frame: Any) -> dict[str, Any]:
    """The request body of a decoded ``{"type": "response.create", ...}`` frame."""
    if not isinstance(frame, dict):
        raise invalid("The message must be a JSON object.", None, "invalid_json")
    ftype = frame.pop("type", None)
    if ftype != "response.create":
        raise invalid(f"Invalid value for 'type': {ftype!r}. The only supported message type is "
                      "'response.create'.", "type", "invalid_event_type")
    for key in WS_FORBIDDEN:
        if key in frame:
            raise invalid(f"'{key}' is not allowed in WebSocket mode: every turn is streamed.", key,
                          "unsupported_parameter")
    return frame
