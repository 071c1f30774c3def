"""Anthropic Messages <-> Responses translation (``POST /v1/messages``).

Like ``protocol.chat``: a Messages request becomes the equivalent
``CreateResponse`` body and runs on the one engine; the result comes back
as a ``message`` object or Anthropic's stream events (``message_start``,
``content_block_start``/``_delta``/``_stop``, ``message_delta``,
``message_stop``). Content blocks: ``text``, ``image`` (base64 or URL),
``tool_use`` -> ``function_call``, ``tool_result`` ->
``function_call_output``; ``thinking`` blocks an assistant turn sends back
are the model's own earlier reasoning and are not re-sent (the engine keeps
reasoning state for chains itself). Parameters the engine cannot honour
(``top_k``, ``thinking`` budgets, server tools, ``container``...) are a 400
naming them. Errors are rendered in Anthropic's shape
(``{"type": "error", "error": {"type", "message"}}``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from responsa.protocol import events as E
from responsa.protocol.errors import ResponsaError, invalid
from responsa.protocol.types import Event, Item, Response

Json = dict[str, Any]

_KNOWN = frozenset({"model", "messages", "max_tokens", "system", "tools", "tool_choice", "stop_sequences",
                    "temperature", "top_p", "metadata", "stream"})
_UNSUPPORTED = {"top_k": "top_k sampling is not supported", "thinking": "thinking budgets are not supported",
                "container": "containers are not supported", "mcp_servers": "use /v1/chat/completions or "
                "/v1/responses for MCP servers", "service_tier": "service tiers are not supported",
                "context_management": "context management is not supported"}


def _bad(message: str, param: str, code: str = "invalid_value") -> ResponsaError:
    return invalid(message, param, code)


@dataclass(slots=True)
class MessagesRequest:
    body: Json
    stream: bool
    max_tokens: int


def parse(raw: Any, *, count_only: bool = False) -> MessagesRequest:
    if not isinstance(raw, dict):
        raise _bad("The request body must be a JSON object.", "body", "invalid_json")
    for key in raw:
        if key in _UNSUPPORTED:
            raise _bad(f"'{key}' is not supported by this server: {_UNSUPPORTED[key]}.", key,
                       "unsupported_parameter")
        if key not in _KNOWN:
            raise _bad(f"{key}: Extra inputs are not permitted", key, "unknown_parameter")
    for key in ("model", "messages") + (() if count_only else ("max_tokens",)):
        if key not in raw:
            raise _bad(f"{key}: Field required", key, "missing_required_parameter")
    max_tokens = raw.get("max_tokens", 1)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _bad("max_tokens: must be a positive integer", "max_tokens")
    body: Json = {"model": raw["model"], "store": False}
    system = raw.get("system")
    if system is not None:
        body["instructions"] = system if isinstance(system, str) else "".join(
            b.get("text", "") for b in system if isinstance(b, dict) and b.get("type") == "text")
    messages = raw["messages"]
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: at least one message is required", "messages")
    body["input"] = [item for i, m in enumerate(messages) for item in _message(m, f"messages.{i}")]
    if raw.get("tools"):
        body["tools"] = [_tool(t, f"tools.{i}") for i, t in enumerate(raw["tools"])]
    if "tool_choice" in raw:
        body["tool_choice"], parallel = _tool_choice(raw["tool_choice"])
        if parallel is False:
            body["parallel_tool_calls"] = False
    for key in ("temperature", "top_p"):
        if key in raw:
            body[key] = raw[key]
    if "stop_sequences" in raw:
        body["model"] = {"model": raw["model"], "settings": {"stop": raw["stop_sequences"]}}
    user = (raw.get("metadata") or {}).get("user_id")
    if user:
        body["safety_identifier"] = str(user)[:128]
    return MessagesRequest(body=body, stream=raw.get("stream") is True, max_tokens=max_tokens)


def _message(raw: Any, param: str) -> list[Item]:
    if not isinstance(raw, dict) or raw.get("role") not in ("user", "assistant"):
        raise _bad(f"{param}.role: Input should be 'user' or 'assistant'", f"{param}.role")
    role = raw["role"]
    content = raw.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _bad(f"{param}.content: Input should be a string or a list of content blocks", f"{param}.content")
    items: list[Item] = []
    parts: list[Json] = []

    def flush() -> None:
        if parts:
            items.append({"type": "message", "role": role, "content": list(parts)})
            parts.clear()

    for j, block in enumerate(content):
        bparam = f"{param}.content.{j}"
        btype = block.get("type") if isinstance(block, dict) else None
        if btype == "text":
            parts.append({"type": "output_text" if role == "assistant" else "input_text", "text": block["text"]})
        elif btype == "image" and role == "user":
            src = block.get("source") or {}
            url = src.get("url") if src.get("type") == "url" else \
                f"data:{src.get('media_type')};base64,{src.get('data')}"
            parts.append({"type": "input_image", "image_url": url})
        elif btype == "tool_use" and role == "assistant":
            flush()
            items.append({"type": "function_call", "call_id": block["id"], "name": block["name"],
                          "arguments": orjson.dumps(block.get("input") or {}).decode()})
        elif btype == "tool_result" and role == "user":
            flush()
            out = block.get("content")
            text = out if isinstance(out, str) else "".join(
                b.get("text", "") for b in out or [] if isinstance(b, dict) and b.get("type") == "text")
            items.append({"type": "function_call_output", "call_id": block["tool_use_id"], "output": text})
        elif btype in ("thinking", "redacted_thinking") and role == "assistant":
            continue
        else:
            raise _bad(f"{bparam}.type: unsupported content block {btype!r} for role {role!r}", f"{bparam}.type")
    flush()
    return items


def _tool(raw: Any, param: str) -> Json:
    if not isinstance(raw, dict) or raw.get("type", "custom") != "custom" or "name" not in raw:
        raise _bad(f"{param}: only client tools ({{name, description, input_schema}}) are supported", param,
                   "unsupported_value")
    out: Json = {"type": "function", "name": raw["name"], "parameters": raw.get("input_schema") or {"type": "object"}}
    if raw.get("description"):
        out["description"] = raw["description"]
    return out


def _tool_choice(raw: Any) -> tuple[Any, bool | None]:
    if not isinstance(raw, dict):
        raise _bad("tool_choice: Input should be an object", "tool_choice")
    parallel = None if raw.get("disable_parallel_tool_use") is None else not raw["disable_parallel_tool_use"]
    kind = raw.get("type")
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", parallel
    if kind == "tool":
        return {"type": "function", "name": raw.get("name")}, parallel
    raise _bad(f"tool_choice.type: unsupported value {kind!r}", "tool_choice.type")


# -- response ------------------------------------------------------------------


def stop_reason(response: Response) -> str:
    if any(it.get("type") == "function_call" for it in response.get("output") or []):
        return "tool_use"
    if response.get("status") == "incomplete":
        return "max_tokens"
    return "end_turn"


def usage(response: Response) -> Json:
    u = response.get("usage") or {}
    return {"input_tokens": u.get("input_tokens", 0), "output_tokens": u.get("output_tokens", 0),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": (u.get("input_tokens_details") or {}).get("cached_tokens", 0)}


def message(response: Response) -> Json:
    content: list[Json] = []
    for item in response.get("output") or []:
        if item.get("type") == "message":
            for p in item.get("content", []):
                if p.get("type") == "output_text":
                    content.append({"type": "text", "text": p.get("text", "")})
                elif p.get("type") == "refusal":
                    content.append({"type": "text", "text": p.get("refusal", "")})
        elif item.get("type") == "function_call":
            content.append({"type": "tool_use", "id": item["call_id"], "name": item["name"],
                            "input": orjson.loads(item.get("arguments") or "{}")})
    return {"id": response["id"], "type": "message", "role": "assistant", "model": response["model"],
            "content": content, "stop_reason": stop_reason(response), "stop_sequence": None,
            "usage": usage(response)}


def error_body(exc: ResponsaError) -> Json:
    etype = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error"}.get(exc.status, "api_error")
    return {"type": "error", "error": {"type": etype, "message": exc.message}}


class StreamEncoder:
    """Responses events -> Anthropic stream events (one content block per
    text part or client tool call)."""

    def __init__(self) -> None:
        self.index = -1
        self.blocks: dict[int, int] = {}

    def feed(self, ev: Event) -> Iterator[Json]:
        etype = ev["type"]
        if etype == E.CREATED:
            r = ev["response"]
            yield {"type": "message_start", "message": {
                "id": r["id"], "type": "message", "role": "assistant", "model": r["model"], "content": [],
                "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}
        elif etype == E.ITEM_ADDED and ev["item"].get("type") == "function_call":
            item = ev["item"]
            self.index += 1
            self.blocks[ev["output_index"]] = self.index
            yield {"type": "content_block_start", "index": self.index,
                   "content_block": {"type": "tool_use", "id": item["call_id"], "name": item["name"], "input": {}}}
        elif etype == E.PART_ADDED:
            self.index += 1
            self.blocks[ev["output_index"]] = self.index
            yield {"type": "content_block_start", "index": self.index, "content_block": {"type": "text", "text": ""}}
        elif etype in (E.TEXT_DELTA, E.REFUSAL_DELTA) and ev["output_index"] in self.blocks:
            yield {"type": "content_block_delta", "index": self.blocks[ev["output_index"]],
                   "delta": {"type": "text_delta", "text": ev["delta"]}}
        elif etype == "response.function_call_arguments.delta" and ev["output_index"] in self.blocks:
            yield {"type": "content_block_delta", "index": self.blocks[ev["output_index"]],
                   "delta": {"type": "input_json_delta", "partial_json": ev["delta"]}}
        elif etype in (E.PART_DONE,) or (etype == E.ITEM_DONE and ev["item"].get("type") == "function_call"):
            if ev["output_index"] in self.blocks:
                yield {"type": "content_block_stop", "index": self.blocks.pop(ev["output_index"])}
        elif etype in (E.COMPLETED, E.INCOMPLETE):
            r = ev["response"]
            yield {"type": "message_delta", "delta": {"stop_reason": stop_reason(r), "stop_sequence": None},
                   "usage": usage(r)}
            yield {"type": "message_stop"}


def frame(event: Json) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
