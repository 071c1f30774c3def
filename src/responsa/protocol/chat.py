"""Chat Completions <-> Responses translation (``POST /v1/chat/completions``).

The Chat Completions front door is a translator, not a second engine: a
chat request becomes the equivalent ``CreateResponse`` body (messages ->
input items, ``response_format`` -> ``text.format``, ``max_tokens`` ->
``max_output_tokens``...), runs through the one ``Engine`` (so state, the
MCP toolset, providers, fallbacks and storage are the Responses API's own),
and the Responses result is translated back: a ``chat.completion`` object
(``completion``) or ``chat.completion.chunk`` objects (``ChunkEncoder``).

Both request dialects are covered: OpenAI's (every parameter of the
``openai`` SDK's ``chat.completions.create``) and the Dedalus extensions as
``dedalus_labs`` 0.3.0 sends them (``mcp_servers`` + ``credentials`` run
server-side by the MCP toolset; ``model`` as a string, ``{model,
settings}`` or a fallback list; the ``mcp_tool_results`` /
``tools_executed`` / ``mcp_server_errors`` fields on the completion and on
the last chunks). The Dedalus client sends explicit ``null`` for unset
optional arguments (``tools=None``), so a ``null`` parameter means absent.

Reject, don't drop: a parameter the engine cannot honour (``n`` > 1,
audio, predicted outputs, Dedalus agent routing...) is a 400 naming it, and
every error names the *chat* parameter (``messages[2].content[0]``), not the
Responses one it was translated to (``rename_param``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from responsa.protocol import events as E
from responsa.protocol.errors import ResponsaError, invalid, rename_input, rename_prefix, renamed
from responsa.protocol.types import Event, Item, Response

Json = dict[str, Any]

# Parameters translated into the Responses request (or into the delivery).
_TRANSLATED = frozenset({
    "model", "messages", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "max_completion_tokens", "max_tokens", "stop", "seed", "logprobs", "top_logprobs",
    "n", "temperature", "top_p", "presence_penalty", "frequency_penalty", "user", "metadata", "store",
    "service_tier", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort",
    "verbosity", "logit_bias", "modalities",
    # Dedalus extensions
    "mcp_servers", "credentials", "automatic_tool_execution", "max_turns", "system_instruction",
})
# Known parameters this server cannot honour: a 400 that says so (never a silent drop).
_UNSUPPORTED = {
    "audio": "audio output is not supported",
    "prediction": "predicted outputs are not supported",
    "web_search_options": "web search is not available on Chat Completions here",
    "functions": "the deprecated 'functions' parameter is not supported; use 'tools'",
    "function_call": "the deprecated 'function_call' parameter is not supported; use 'tool_choice'",
    "agent_attributes": "agent routing attributes are not supported",
    "model_attributes": "agent routing attributes are not supported",
    "handoff_config": "model handoffs are not supported; a model list is a fallback chain here",
    "handoff_mode": "model handoffs are not supported; a model list is a fallback chain here",
    "guardrails": "guardrails are not supported",
    "deferred": "deferred execution is not supported",
    "deferred_calls": "deferred execution is not supported",
    "cached_content": "provider cache handles are not supported",
    "correlation_id": "correlation ids are not supported",
    "generation_config": "provider-specific generation configs are not supported",
    "output_config": "provider-specific output configs are not supported",
    "tool_config": "provider-specific tool configs are not supported",
    "safety_settings": "provider-specific safety settings are not supported",
    "search_parameters": "provider-specific search parameters are not supported",
    "safe_prompt": "provider-specific safe prompts are not supported",
    "prompt_mode": "prompt modes are not supported",
    "thinking": "use 'reasoning_effort' for reasoning models",
    "top_k": "top_k sampling is not supported by the engine's model request",
    "inference_geo": "inference regions are not supported",
    "speed": "speed tiers are not supported",
}
_ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_N = 8
"""The most choices one request may ask for: each is a whole engine turn, so
a request's cost stays bounded (OpenAI allows 128 single model calls)."""
# Sampling settings passed to the upstream as given (model ``settings``):
# Chat Completions and local upstreams read them; others ignore them.
_PASSED = ("stop", "seed", "logit_bias")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _expect(value: Any, types: type | tuple[type, ...], param: str, what: str) -> Any:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in (
            types if isinstance(types, tuple) else (types,))):
        raise invalid(f"Invalid type for '{param}': expected {what}, but got {_kind(value)}.", param,
                      "invalid_type")
    return value


@dataclass(slots=True)
class ChatRequest:
    """A chat request translated: the Responses body, how to deliver the
    result, and where each input item came from (for error names)."""

    body: Json
    stream: bool = False
    include_usage: bool = False
    logprobs: bool = False
    max_output_tokens: int | None = None
    """Set after parsing (the Responses minimum of 16 does not apply to chat)."""
    max_tokens_param: str = "max_completion_tokens"
    n: int = 1
    """Choices asked for: each one an independent turn of the engine."""
    max_turns: int | None = None
    """Dedalus ``max_turns``: model calls allowed (the engine's ``Turn.max_turns``)."""
    origins: list[str] = field(default_factory=list)
    """``origins[i]``: the chat parameter input item ``i`` was made from (``messages[3]``)."""


# -- request -------------------------------------------------------------------


def parse(raw: Any) -> ChatRequest:
    """Translate a decoded chat request body; every failure is a 400 naming the chat parameter."""
    if not isinstance(raw, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_json")
    req = {k: v for k, v in raw.items() if v is not None}
    for key in req:
        if key in _UNSUPPORTED:
            raise invalid(f"'{key}' is not supported by this server: {_UNSUPPORTED[key]}.", key,
                          "unsupported_parameter")
        if key not in _TRANSLATED:
            raise invalid(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    if "model" not in req:
        raise invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if "messages" not in req:
        raise invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    out = ChatRequest(body={})
    body = out.body
    settings = _settings(req)
    body["model"] = _with_settings(req["model"], settings) if settings else req["model"]
    instructions = req.get("system_instruction")
    if instructions is not None:
        body["instructions"] = _expect(instructions, str, "system_instruction", "a string")
    tool_names = [((t.get("function") or {}).get("name")) for t in req.get("tools") or [] if isinstance(t, dict)]
    body["input"], out.origins = _messages(_expect(req["messages"], list, "messages", "an array"), tool_names)
    if not body["input"]:
        raise invalid("'messages' must contain at least one message.", "messages", "empty_array")
    _delivery(req, out)
    _sampling(req, body)
    _limits(req, out)
    if "tools" in req:
        body["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(_expect(req["tools"], list, "tools",
                                                                                "an array"))]
    if "tool_choice" in req:
        body["tool_choice"] = _tool_choice(req["tool_choice"])
    if "response_format" in req:
        body.setdefault("text", {})["format"] = _response_format(req["response_format"])
    if "verbosity" in req:
        body.setdefault("text", {})["verbosity"] = req["verbosity"]
    if "reasoning_effort" in req:
        body["reasoning"] = {"effort": req["reasoning_effort"]}
    # OpenAI stores a chat completion only when asked; so does this door.
    body["store"] = _expect(req.get("store", False), bool, "store", "a boolean")
    out.max_turns = _dedalus(req, body)
    return out


def _settings(req: Json) -> Json:
    return {k: req[k] for k in _PASSED if k in req}


def _with_settings(model: Any, settings: Json) -> Any:
    """``stop``/``seed``/``logit_bias`` ride on each model entry's ``settings``
    (the engine merges them into that upstream's request)."""
    entries = model if isinstance(model, list) else [model]
    out = []
    for entry in entries:
        if isinstance(entry, dict):
            merged = {**settings, **(entry.get("settings") or {})}
            out.append({**entry, "settings": merged})
        else:
            out.append({"model": entry, "settings": settings})
    return out if isinstance(model, list) else out[0]


def _delivery(req: Json, out: ChatRequest) -> None:
    out.stream = _expect(req.get("stream", False), bool, "stream", "a boolean")
    opts = _expect(req.get("stream_options", {}), dict, "stream_options", "an object")
    for key, value in opts.items():
        if key not in ("include_usage", "include_obfuscation"):
            raise invalid(f"Unknown parameter: 'stream_options.{key}'.", f"stream_options.{key}",
                          "unknown_parameter")
        _expect(value, bool, f"stream_options.{key}", "a boolean")
    if opts and not out.stream:
        raise invalid("'stream_options' is only allowed when 'stream' is true.", "stream_options")
    out.include_usage = bool(opts.get("include_usage"))
    out.n = _expect(req.get("n", 1), int, "n", "an integer")
    if not 1 <= out.n <= MAX_N:
        raise invalid(f"Invalid 'n': {out.n}. Each choice is a whole turn of the engine (its own model calls "
                      f"and tool runs), so 'n' is between 1 and {MAX_N} here; send more requests for more "
                      "samples.", "n", "integer_above_max_value" if out.n > MAX_N else "integer_below_min_value")
    if out.n > 1 and req.get("store"):
        raise invalid("'store' cannot be true with 'n' > 1: a stored completion is one Response. Store "
                      "n requests with n = 1 instead.", "store", "unsupported_value")
    modalities = req.get("modalities", ["text"])
    if modalities != ["text"]:
        raise invalid("Only the 'text' modality is supported.", "modalities", "unsupported_value")


def _sampling(req: Json, body: Json) -> None:
    for key in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "user", "metadata",
                "parallel_tool_calls", "service_tier", "safety_identifier", "prompt_cache_key",
                "prompt_cache_retention", "top_logprobs"):
        if key in req:
            body[key] = req[key]
    if "seed" in req:
        _expect(req["seed"], int, "seed", "an integer")
    if "stop" in req:
        stop = req["stop"]
        if isinstance(stop, list):
            if len(stop) > 4 or not all(isinstance(s, str) for s in stop):
                raise invalid("'stop' must be a string or an array of up to 4 strings.", "stop")
        else:
            _expect(stop, str, "stop", "a string or an array of strings")


def _limits(req: Json, out: ChatRequest) -> None:
    logprobs = _expect(req.get("logprobs", False), bool, "logprobs", "a boolean")
    out.logprobs = logprobs
    if logprobs:
        out.body["include"] = ["message.output_text.logprobs"]
        out.body.setdefault("top_logprobs", 0)
    elif "top_logprobs" in req:
        raise invalid("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs")
    for key in ("max_completion_tokens", "max_tokens"):
        if key in req:
            value = _expect(req[key], int, key, "an integer")
            if value < 1:
                raise invalid(f"Invalid '{key}': must be at least 1.", key, "integer_below_min_value")
            out.max_output_tokens, out.max_tokens_param = value, key
            break


def _dedalus(req: Json, body: Json) -> int | None:
    """The Dedalus extensions into ``body``; returns ``max_turns``."""
    for key in ("mcp_servers", "credentials"):
        if key in req:
            body[key] = req[key]
    auto = _expect(req.get("automatic_tool_execution", True), bool, "automatic_tool_execution", "a boolean")
    if not auto and req.get("mcp_servers") not in (None, [], ""):
        raise invalid("'automatic_tool_execution': false cannot be honoured with 'mcp_servers': this server "
                      "runs MCP tools itself. Leave it out (or true), or pass the tools as functions.",
                      "automatic_tool_execution", "unsupported_value")
    if "max_turns" in req:
        turns = _expect(req["max_turns"], int, "max_turns", "an integer")
        if turns < 1:
            raise invalid("Invalid 'max_turns': must be at least 1.", "max_turns", "integer_below_min_value")
        return int(turns)
    return None


# -- messages ------------------------------------------------------------------


def _messages(messages: list[Any], tool_names: list[Any]) -> tuple[list[Item], list[str]]:
    """Messages as input items. A ``tool`` message whose call is not in the
    history gets that call put back before it: ``DedalusRunner``'s streaming
    loop sends the local tools' results without the assistant message that
    called them. The call's name is the message's ``name``, else the only
    declared tool's, else ``"tool"`` (its arguments are unknown: ``{}``)."""
    items: list[Item] = []
    origins: list[str] = []
    called: set[str] = set()
    for i, raw in enumerate(messages):
        param = f"messages[{i}]"
        msg = _expect(raw, dict, param, "an object")
        role = msg.get("role")
        if role not in _ROLES:
            if role == "function":
                raise invalid(f"'{param}.role' 'function' (deprecated) is not supported; use 'tool'.",
                              f"{param}.role", "unsupported_value")
            raise invalid(f"Invalid value for '{param}.role': {role!r}. Supported values are: "
                          + ", ".join(repr(r) for r in _ROLES) + ".", f"{param}.role")
        made = _message(msg, role, param)
        for item in made:
            if item["type"] == "function_call":
                called.add(item["call_id"])
            elif item["type"] == "function_call_output" and item["call_id"] not in called:
                name = msg.get("name") or (tool_names[0] if len(tool_names) == 1 else None)
                items.append({"type": "function_call", "call_id": item["call_id"],
                              "name": name if isinstance(name, str) and name else "tool", "arguments": "{}"})
                origins.append(param)
                called.add(item["call_id"])
        items += made
        origins += [param] * len(made)
    return items, origins


_MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "refusal", "audio", "function_call", "annotations",
                  "thought_signature", "reasoning_content"},
    "tool": {"role", "content", "tool_call_id", "name"},
}


def _message(msg: Json, role: str, param: str) -> list[Item]:
    for key in msg:
        if key not in _MESSAGE_KEYS[role]:
            raise invalid(f"Unknown parameter: '{param}.{key}'.", f"{param}.{key}", "unknown_parameter")
    content = msg.get("content")
    if role == "tool":
        call_id = _expect(msg.get("tool_call_id"), str, f"{param}.tool_call_id", "a string")
        return [{"type": "function_call_output", "call_id": call_id, "output": _text(content, f"{param}.content")}]
    if role == "assistant":
        if msg.get("audio") is not None or msg.get("function_call") is not None:
            key = "audio" if msg.get("audio") is not None else "function_call"
            raise invalid(f"'{param}.{key}' is not supported.", f"{param}.{key}", "unsupported_parameter")
        out: list[Item] = []
        parts: list[Json] = []
        if content is not None and content != "":
            parts = [{"type": "output_text", "text": _text(content, f"{param}.content", refusal=True)}]
        if msg.get("refusal"):
            parts.append({"type": "refusal", "refusal": _expect(msg["refusal"], str, f"{param}.refusal",
                                                                  "a string")})
        if parts:
            out.append({"type": "message", "role": "assistant", "content": parts})
        for j, call in enumerate(_expect(msg.get("tool_calls") or [], list, f"{param}.tool_calls", "an array")):
            cparam = f"{param}.tool_calls[{j}]"
            _expect(call, dict, cparam, "an object")
            fn = _expect(call.get("function"), dict, f"{cparam}.function", "an object")
            out.append({"type": "function_call",
                        "call_id": _expect(call.get("id"), str, f"{cparam}.id", "a string"),
                        "name": _expect(fn.get("name"), str, f"{cparam}.function.name", "a string"),
                        "arguments": _expect(fn.get("arguments", "{}"), str, f"{cparam}.function.arguments",
                                             "a string")})
        if not out:
            raise invalid(f"'{param}' must have 'content' or 'tool_calls'.", f"{param}.content",
                          "missing_required_parameter")
        return out
    if content is None:
        raise invalid(f"Missing required parameter: '{param}.content'.", f"{param}.content",
                      "missing_required_parameter")
    if isinstance(content, str):
        return [{"type": "message", "role": role, "content": [{"type": "input_text", "text": content}]}]
    _expect(content, list, f"{param}.content", "a string or an array of content parts")
    parts = [_user_part(p, f"{param}.content[{j}]") if role == "user" else
             {"type": "input_text", "text": _text_part(p, f"{param}.content[{j}]")}
             for j, p in enumerate(content)]
    return [{"type": "message", "role": role, "content": parts}]


def _text_part(raw: Any, param: str) -> str:
    part = _expect(raw, dict, param, "an object")
    if part.get("type") != "text":
        raise invalid(f"Invalid value for '{param}.type': {part.get('type')!r}. Supported values are: 'text'.",
                      f"{param}.type")
    return str(_expect(part.get("text"), str, f"{param}.text", "a string"))


def _text(content: Any, param: str, *, refusal: bool = False) -> str:
    """A string, or text parts joined (tool and assistant messages)."""
    if isinstance(content, str):
        return content
    _expect(content, list, param, "a string or an array of text parts")
    out = []
    for j, raw in enumerate(content):
        part = _expect(raw, dict, f"{param}[{j}]", "an object")
        if refusal and part.get("type") == "refusal":
            continue
        out.append(_text_part(part, f"{param}[{j}]"))
    return "".join(out)


def _user_part(raw: Any, param: str) -> Json:
    part = _expect(raw, dict, param, "an object")
    ptype = part.get("type")
    if ptype == "text":
        return {"type": "input_text", "text": _text_part(part, param)}
    if ptype == "image_url":
        image = _expect(part.get("image_url"), dict, f"{param}.image_url", "an object")
        out: Json = {"type": "input_image",
                     "image_url": _expect(image.get("url"), str, f"{param}.image_url.url", "a string")}
        if "detail" in image:
            out["detail"] = image["detail"]
        return out
    if ptype == "file":
        file = _expect(part.get("file"), dict, f"{param}.file", "an object")
        out = {"type": "input_file"}
        for key in ("file_data", "filename", "file_id"):
            if file.get(key) is not None:
                out[key] = file[key]
        return out
    if ptype == "input_audio":
        raise invalid(f"'{param}': audio input is not supported.", f"{param}.type", "unsupported_value")
    raise invalid(f"Invalid value for '{param}.type': {ptype!r}. Supported values are: 'text', 'image_url' "
                  "and 'file'.", f"{param}.type")


# -- tools and formats ---------------------------------------------------------


def _tool(raw: Any, param: str) -> Json:
    tool = _expect(raw, dict, param, "an object")
    if tool.get("type") != "function":
        raise invalid(f"Invalid value for '{param}.type': {tool.get('type')!r}. Supported values are: "
                      "'function'.", f"{param}.type", "unsupported_value")
    for key in tool:
        if key not in ("type", "function"):
            raise invalid(f"Unknown parameter: '{param}.{key}'.", f"{param}.{key}", "unknown_parameter")
    fn = _expect(tool.get("function"), dict, f"{param}.function", "an object")
    out: Json = {"type": "function"}
    for key, value in fn.items():
        if key not in ("name", "description", "parameters", "strict"):
            raise invalid(f"Unknown parameter: '{param}.function.{key}'.", f"{param}.function.{key}",
                          "unknown_parameter")
        if value is not None:
            out[key] = value
    if "name" not in out:
        raise invalid(f"Missing required parameter: '{param}.function.name'.", f"{param}.function.name",
                      "missing_required_parameter")
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    _expect(choice, dict, "tool_choice", "a string or an object")
    if choice.get("type") == "function":
        fn = _expect(choice.get("function"), dict, "tool_choice.function", "an object")
        return {"type": "function", "name": fn.get("name")}
    if choice.get("type") == "allowed_tools":
        allowed = _expect(choice.get("allowed_tools"), dict, "tool_choice.allowed_tools", "an object")
        tools = _expect(allowed.get("tools"), list, "tool_choice.allowed_tools.tools", "an array")
        names = [{"type": "function", "name": (t.get("function") or {}).get("name")} if isinstance(t, dict) else t
                 for t in tools]
        return {"type": "allowed_tools", "mode": allowed.get("mode", "auto"), "tools": names}
    raise invalid(f"Invalid value for 'tool_choice.type': {choice.get('type')!r}.", "tool_choice.type")


def _response_format(raw: Any) -> Json:
    fmt = _expect(raw, dict, "response_format", "an object")
    ftype = fmt.get("type")
    if ftype in ("text", "json_object"):
        if set(fmt) - {"type"}:
            key = sorted(set(fmt) - {"type"})[0]
            raise invalid(f"Unknown parameter: 'response_format.{key}'.", f"response_format.{key}",
                          "unknown_parameter")
        return {"type": ftype}
    if ftype == "json_schema":
        schema = _expect(fmt.get("json_schema"), dict, "response_format.json_schema", "an object")
        return {"type": "json_schema", **{k: v for k, v in schema.items() if v is not None}}
    raise invalid(f"Invalid value for 'response_format.type': {ftype!r}. Supported values are: 'text', "
                  "'json_object' and 'json_schema'.", "response_format.type")


# -- error names ---------------------------------------------------------------

_RENAMES = (("text.format.", "response_format.json_schema."), ("text.format", "response_format"),
            ("text.verbosity", "verbosity"), ("reasoning.effort", "reasoning_effort"),
            ("tool_choice.name", "tool_choice.function.name"), ("include", "logprobs"))


def rename_param(exc: ResponsaError, chat: ChatRequest) -> ResponsaError:
    """``exc`` naming the chat parameter its Responses parameter came from."""
    param = exc.param or ""
    if param.startswith("input"):
        return rename_input(exc, chat.origins, "messages")
    if param == "max_output_tokens":
        return renamed(exc, chat.max_tokens_param)
    if param.startswith("tools[") and "]." in param:
        head, _, rest = param.partition("].")
        return renamed(exc, f"{head}].function.{rest}") if not rest.startswith("type") else exc
    return rename_prefix(exc, _RENAMES)


# -- response ------------------------------------------------------------------

DEDALUS_FIELDS = ("mcp_tool_results", "tools_executed", "mcp_server_errors")


def finish_reason(response: Response) -> str:
    if any(it.get("type") == "function_call" for it in response.get("output") or []):
        return "tool_calls"
    reason = (response.get("incomplete_details") or {}).get("reason")
    if response.get("status") == "incomplete":
        return "content_filter" if reason == "content_filter" else "length"
    return "stop"


def usage(response: Response) -> Json | None:
    u = response.get("usage")
    if not u:
        return None
    return {"prompt_tokens": u["input_tokens"], "completion_tokens": u["output_tokens"],
            "total_tokens": u["total_tokens"],
            "prompt_tokens_details": {"cached_tokens": (u.get("input_tokens_details") or {}).get("cached_tokens", 0),
                                      "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": (u.get("output_tokens_details") or {}).get("reasoning_tokens", 0),
                "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _extras(response: Response) -> Json:
    return {k: response[k] for k in DEDALUS_FIELDS if k in response}


def _logprob(entry: Json) -> Json:
    return {"token": entry.get("token", ""), "logprob": entry.get("logprob", 0.0), "bytes": entry.get("bytes"),
            "top_logprobs": [{"token": t.get("token", ""), "logprob": t.get("logprob", 0.0),
                              "bytes": t.get("bytes")} for t in entry.get("top_logprobs") or []]}


def _choice(response: Response, chat: ChatRequest, index: int) -> Json:
    """One Response as a choice: the text of its messages, the client's calls
    as ``tool_calls`` (server-run MCP calls show in ``mcp_tool_results``
    instead), its ending."""
    texts: list[str] = []
    refusals: list[str] = []
    logprobs: list[Json] = []
    calls: list[Json] = []
    for item in response.get("output") or []:
        if item.get("type") == "message":
            parts = [p.get("text", "") for p in item.get("content", []) if p.get("type") == "output_text"]
            if parts:
                texts.append("".join(parts))
            refusals += [p.get("refusal", "") for p in item.get("content", []) if p.get("type") == "refusal"]
            for p in item.get("content", []):
                logprobs += [_logprob(e) for e in p.get("logprobs") or []]
        elif item.get("type") == "function_call":
            calls.append({"id": item["call_id"], "type": "function",
                          "function": {"name": item["name"], "arguments": item.get("arguments") or "{}"}})
    message: Json = {"role": "assistant", "content": SEPARATOR.join(t for t in texts if t) if texts else None,
                     "refusal": "".join(refusals) or None, "annotations": []}
    if calls:
        message["tool_calls"] = calls
    return {"index": index, "message": message, "finish_reason": finish_reason(response),
            "logprobs": {"content": logprobs, "refusal": None} if chat.logprobs else None}


def merged_usage(responses: list[Response]) -> Json | None:
    """The usage of ``n`` choices: the sum of their turns' usages."""
    parts = [u for u in (usage(r) for r in responses) if u is not None]
    if not parts:
        return None
    total = parts[0]
    for u in parts[1:]:
        total = _add(total, u)
    return total


def _add(a: Json, b: Json) -> Json:
    return {k: _add(v, b[k]) if isinstance(v, dict) else v + b[k] for k, v in a.items()}


def merged_extras(responses: list[Response]) -> Json:
    """The Dedalus fields of ``n`` choices' turns, together."""
    out: Json = {}
    for r in responses:
        for key, value in _extras(r).items():
            if isinstance(value, dict):
                out[key] = {**out.get(key, {}), **value}
            else:
                out[key] = [*out.get(key, []), *value]
    return out


def completion(responses: list[Response], chat: ChatRequest) -> Json:
    """The final Responses (one per choice; the first names the completion) as a ``chat.completion``."""
    first = responses[0]
    return {"id": first["id"], "object": "chat.completion", "created": first["created_at"],
            "model": first["model"], "choices": [_choice(r, chat, i) for i, r in enumerate(responses)],
            "usage": merged_usage(responses), "service_tier": first.get("service_tier"),
            "system_fingerprint": None, **merged_extras(responses)}


SEPARATOR = "\n\n"
"""Between the texts of two message items of one response (text, a server-run tool, more text)."""


class ChunkEncoder:
    """Responses events -> ``chat.completion.chunk`` objects, one response.

    The first chunk carries ``role``; text, refusal and the client's tool
    call deltas follow as they stream; the terminal event gives the chunk
    with ``finish_reason`` (and the Dedalus fields), then, with
    ``stream_options.include_usage``, a chunk with no choices and the usage
    (every earlier chunk then says ``usage: null``, as OpenAI does)."""

    def __init__(self, chat: ChatRequest, index: int = 0, completion_id: str = "") -> None:
        self.chat = chat
        self.index = index
        self.id = completion_id
        """The completion's id: choice 0's Response id (set by its ``response.created``)."""
        self.model = ""
        self.created = int(time.time())
        self.calls: dict[int, int] = {}
        self.texts = 0
        self.text_open = False

    def _chunk(self, delta: Json, finish: str | None = None, logprobs: Json | None = None) -> Json:
        out: Json = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                     "model": self.model, "system_fingerprint": None,
                     "choices": [{"index": self.index, "delta": delta, "finish_reason": finish,
                                  "logprobs": logprobs}]}
        if self.chat.include_usage:
            out["usage"] = None
        return out

    def feed(self, ev: Event) -> Iterator[Json]:
        etype = ev["type"]
        if etype == E.CREATED:
            resp = ev["response"]
            self.id, self.model, self.created = self.id or resp["id"], resp["model"], resp["created_at"]
            yield self._chunk({"role": "assistant", "content": ""})
        elif etype == E.ITEM_ADDED:
            item = ev["item"]
            if item.get("type") == "function_call":
                index = self.calls[ev["output_index"]] = len(self.calls)
                yield self._chunk({"tool_calls": [{"index": index, "id": item["call_id"], "type": "function",
                                                   "function": {"name": item["name"], "arguments": ""}}]})
            elif item.get("type") == "message":
                if self.texts:
                    self.text_open = True  # a separator goes before this item's first text
                self.texts += 1
        elif etype == E.TEXT_DELTA:
            text = ev["delta"]
            if self.text_open:
                text, self.text_open = SEPARATOR + text, False
            logprobs = None
            if self.chat.logprobs:
                logprobs = {"content": [_logprob(e) for e in ev.get("logprobs") or []], "refusal": None}
            yield self._chunk({"content": text}, logprobs=logprobs)
        elif etype == E.REFUSAL_DELTA:
            yield self._chunk({"refusal": ev["delta"]})
        elif etype == "response.function_call_arguments.delta" and ev["output_index"] in self.calls:
            yield self._chunk({"tool_calls": [{"index": self.calls[ev["output_index"]],
                                               "function": {"arguments": ev["delta"]}}]})
        elif etype in (E.COMPLETED, E.INCOMPLETE):
            resp = ev["response"]
            last = self._chunk({}, finish_reason(resp))
            last.update(_extras(resp))
            yield last
            if self.chat.include_usage and self.chat.n == 1:  # n > 1: the door sums the choices' usage
                yield self.usage_chunk([resp])

    def usage_chunk(self, responses: list[Response]) -> Json:
        """The last chunk with ``stream_options.include_usage``: no choices, the usage."""
        return {**self._chunk({}), "choices": [], "usage": merged_usage(responses), **merged_extras(responses)}


def encode_chunk(chunk: Json) -> bytes:
    """One SSE frame with no ``event:`` line (the Dedalus client's chat parser skips framed events)."""
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
