"""Anthropic Messages <-> Responses translation (``POST /v1/messages``).

Like ``protocol.chat``: a Messages request becomes the equivalent
``CreateResponse`` body and runs on the one engine; the result comes back
as a ``message`` object or Anthropic's stream events (``message_start``,
``ping``, ``content_block_start``/``_delta``/``_stop``, ``message_delta``,
``message_stop``).

Content blocks: ``text``, ``image`` and ``document`` (base64, text or
URL), ``tool_use`` -> ``function_call``, ``tool_result`` ->
``function_call_output``, ``thinking``/``redacted_thinking`` -> a
``reasoning`` item whose opaque state is the block's ``signature``/``data``
(so a provider can continue its own reasoning; another family's state is
dropped by the provider, as for Responses chains). ``thinking``
(``enabled`` with a budget, ``adaptive``) and ``output_config.effort``
become ``reasoning.effort``; ``output_config.format`` becomes a
json_schema ``text.format``; ``stop_sequences`` and ``top_k`` ride on the
model's ``settings`` (upstreams that read them get them). Parameters the
engine cannot honour (``container``, server-side ``mcp_servers``,
``context_management``, ``speed``...) are a 400 naming them. Errors are
rendered in Anthropic's shape by ``protocol.errors.body_for``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from responsa.protocol import events as E
from responsa.protocol.errors import ResponsaError, invalid, rename_input, rename_prefix
from responsa.protocol.types import Event, Item, Response

Json = dict[str, Any]

_KNOWN = frozenset({"model", "messages", "max_tokens", "system", "tools", "tool_choice", "stop_sequences",
                    "temperature", "top_p", "top_k", "metadata", "stream", "thinking", "output_config",
                    "cache_control", "service_tier"})
_UNSUPPORTED = {"container": "code-execution containers are not supported",
                "mcp_servers": "use /v1/chat/completions or /v1/responses for MCP servers",
                "context_management": "context management is not supported",
                "speed": "speed modes are not supported",
                "inference_geo": "inference regions are not supported",
                "diagnostics": "prompt-cache diagnostics are not available",
                "user_profile_id": "user profiles are not supported",
                "workspace_id": "workspaces are not supported; each API key is its own tenant"}
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
_BUDGET_EFFORT = ((32768, "xhigh"), (16384, "high"), (4096, "medium"), (0, "low"))
"""A thinking budget -> the largest effort whose budget (the Anthropic
provider's own table) it covers."""


def _bad(message: str, param: str, code: str = "invalid_value") -> ResponsaError:
    return invalid(message, param, code)


@dataclass(slots=True)
class MessagesRequest:
    body: Json
    stream: bool
    max_tokens: int
    show_thinking: bool = True
    """``thinking.display`` is not ``omitted``: thinking text is shown (else only its signature)."""
    origins: list[str] = field(default_factory=list)
    """``origins[i]``: the message input item ``i`` was made from (``messages.3``), for error names."""


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
    system = _system(raw.get("system"))
    if system:
        body["instructions"] = system
    messages = raw["messages"]
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: at least one message is required", "messages")
    body["input"], origins = [], []
    for i, m in enumerate(messages):
        made = _message(m, f"messages.{i}")
        body["input"] += made
        origins += [f"messages.{i}"] * len(made)
    if raw.get("tools"):
        if not isinstance(raw["tools"], list):
            raise _bad("tools: Input should be a valid list", "tools", "invalid_type")
        body["tools"] = [_tool(t, f"tools.{i}") for i, t in enumerate(raw["tools"])]
    if "tool_choice" in raw:
        body["tool_choice"], parallel = _tool_choice(raw["tool_choice"])
        if parallel is False:
            body["parallel_tool_calls"] = False
    for key in ("temperature", "top_p"):
        if key in raw:
            body[key] = raw[key]
    settings = _settings(raw)
    if settings:
        body["model"] = {"model": raw["model"], "settings": settings}
    user = (raw.get("metadata") or {}).get("user_id") if isinstance(raw.get("metadata"), dict) else None
    if user:
        body["safety_identifier"] = str(user)[:128]
    if raw.get("service_tier") is not None:
        if raw["service_tier"] not in ("auto", "standard_only"):
            raise _bad("service_tier: Input should be 'auto' or 'standard_only'", "service_tier")
        body["service_tier"] = "auto" if raw["service_tier"] == "auto" else "default"
    out = MessagesRequest(body=body, stream=raw.get("stream") is True, max_tokens=max_tokens, origins=origins)
    _reasoning(raw, out)
    _output_format(raw.get("output_config"), body)
    return out


def _system(system: Any) -> str | None:
    """``system``: a string or text blocks (``cache_control`` on them is a caching hint)."""
    if system is None or isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise _bad("system: Input should be a string or a list of text blocks", "system", "invalid_type")
    texts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise _bad(f"system.{i}: only text blocks are allowed in system", f"system.{i}")
        texts.append(block["text"])
    return "\n\n".join(texts)


def _settings(raw: Json) -> Json:
    """Sampling settings with no Responses field: on the model entry's ``settings``."""
    settings: Json = {}
    if "stop_sequences" in raw:
        stops = raw["stop_sequences"]
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise _bad("stop_sequences: Input should be a list of non-empty strings", "stop_sequences")
        if stops:
            settings["stop"] = stops
    if raw.get("top_k") is not None:
        if not isinstance(raw["top_k"], int) or isinstance(raw["top_k"], bool) or raw["top_k"] < 0:
            raise _bad("top_k: Input should be a non-negative integer", "top_k")
        settings["top_k"] = raw["top_k"]
    return settings


def _reasoning(raw: Json, out: MessagesRequest) -> None:
    """``thinking`` and ``output_config.effort`` -> ``reasoning``."""
    config = raw.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise _bad("output_config: Input should be an object", "output_config", "invalid_type")
    effort = None
    if config and config.get("effort") is not None:
        effort = _EFFORTS.get(config["effort"])
        if effort is None:
            raise _bad("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'",
                       "output_config.effort")
    thinking = raw.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise _bad("thinking: Input should be an object", "thinking", "invalid_type")
        kind = thinking.get("type")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1024:
                raise _bad("thinking.budget_tokens: Input should be greater than or equal to 1024",
                           "thinking.budget_tokens")
            if budget >= out.max_tokens:
                raise _bad("`max_tokens` must be greater than `thinking.budget_tokens`", "thinking.budget_tokens")
            effort = effort or next(e for floor, e in _BUDGET_EFFORT if budget >= floor)
        elif kind in ("adaptive", "between_tools"):
            effort = effort or "medium"
        elif kind != "disabled":
            raise _bad("thinking.type: Input should be 'enabled', 'disabled', 'adaptive' or 'between_tools'",
                       "thinking.type")
        display = thinking.get("display")
        if display not in (None, "summarized", "omitted"):
            raise _bad("thinking.display: Input should be 'summarized' or 'omitted'", "thinking.display")
        out.show_thinking = display != "omitted"
        if kind == "disabled":
            effort = None
    if effort is not None:
        out.body["reasoning"] = {"effort": effort, **({"summary": "auto"} if out.show_thinking else {})}


def _output_format(config: Any, body: Json) -> None:
    fmt = (config or {}).get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise _bad("output_config.format: Input should be {\"type\": \"json_schema\", \"schema\": {...}}",
                   "output_config.format")
    body["text"] = {"format": {"type": "json_schema", "name": "output", "schema": fmt["schema"]}}


def _message(raw: Any, param: str) -> list[Item]:
    if not isinstance(raw, dict) or raw.get("role") not in ("user", "assistant", "system"):
        raise _bad(f"{param}.role: Input should be 'user', 'assistant' or 'system'", f"{param}.role")
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
        if btype == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "output_text" if role == "assistant" else "input_text", "text": block["text"]})
        elif btype in ("image", "document") and role == "user":
            parts.append(_media(block, bparam))
        elif btype == "tool_use" and role == "assistant":
            flush()
            items.append(_tool_use(block, bparam))
        elif btype == "tool_result" and role == "user":
            flush()
            items.append(_tool_result(block, bparam))
        elif btype in ("thinking", "redacted_thinking") and role == "assistant":
            flush()
            items.append(_thinking_item(block))
        else:
            raise _bad(f"{bparam}.type: unsupported content block {btype!r} for role {role!r}", f"{bparam}.type")
    flush()
    return items


def _media(block: Json, param: str) -> Json:
    src = block.get("source")
    if not isinstance(src, dict):
        raise _bad(f"{param}.source: Field required", f"{param}.source", "missing_required_parameter")
    kind = src.get("type")
    image = block["type"] == "image"
    if kind == "url" and isinstance(src.get("url"), str):
        return {"type": "input_image", "image_url": src["url"]} if image else \
            {"type": "input_file", "file_url": src["url"]}
    if kind == "base64" and isinstance(src.get("data"), str) and isinstance(src.get("media_type"), str):
        url = f"data:{src['media_type']};base64,{src['data']}"
        return {"type": "input_image", "image_url": url} if image else \
            {"type": "input_file", "file_data": url, "filename": block.get("title") or "document"}
    if kind == "text" and not image and isinstance(src.get("data"), str):
        return {"type": "input_text", "text": src["data"]}
    raise _bad(f"{param}.source.type: unsupported source {kind!r}", f"{param}.source.type")


def _tool_use(block: Json, param: str) -> Item:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise _bad(f"{param}: a tool_use block needs 'id' and 'name'", param, "missing_required_parameter")
    return {"type": "function_call", "call_id": block["id"], "name": block["name"],
            "arguments": orjson.dumps(block.get("input") or {}).decode()}


def _tool_result(block: Json, param: str) -> Item:
    if not isinstance(block.get("tool_use_id"), str):
        raise _bad(f"{param}.tool_use_id: Field required", f"{param}.tool_use_id", "missing_required_parameter")
    out = block.get("content")
    if out is None or isinstance(out, str):
        output: Any = out or ""
    elif isinstance(out, list):
        output = [_media(b, f"{param}.content.{k}") if isinstance(b, dict) and b.get("type") in ("image", "document")
                  else {"type": "input_text", "text": b.get("text", "") if isinstance(b, dict) else ""}
                  for k, b in enumerate(out)]
        if all(p["type"] == "input_text" for p in output):  # text only: the plain string every model reads
            output = "".join(p["text"] for p in output)
    else:
        raise _bad(f"{param}.content: Input should be a string or a list of blocks", f"{param}.content")
    if block.get("is_error") and isinstance(output, str):
        output = f"Error: {output}"
    return {"type": "function_call_output", "call_id": block["tool_use_id"], "output": output}


def _thinking_item(block: Json) -> Item:
    """An earlier turn's thinking, carried back as a reasoning item: its
    ``signature`` (or redacted ``data``) is the opaque state the engine gave
    out as ``encrypted_content``, so the provider that issued it continues."""
    item: Item = {"type": "reasoning", "summary": []}
    if block["type"] == "thinking" and block.get("thinking"):
        item["content"] = [{"type": "reasoning_text", "text": str(block["thinking"])}]
    state = block.get("signature") if block["type"] == "thinking" else block.get("data")
    if isinstance(state, str) and state:
        item["encrypted_content"] = state
    return item


def _tool(raw: Any, param: str) -> Json:
    if not isinstance(raw, dict) or raw.get("type", "custom") != "custom" or "name" not in raw:
        raise _bad(f"{param}: only client tools ({{name, description, input_schema}}) are supported; server "
                   f"tools ({raw.get('type') if isinstance(raw, dict) else raw!r}) are not", param,
                   "unsupported_value")
    out: Json = {"type": "function", "name": raw["name"], "parameters": raw.get("input_schema") or {"type": "object"}}
    if raw.get("description"):
        out["description"] = raw["description"]
    if raw.get("strict") is not None:
        out["strict"] = raw["strict"]
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


_RENAMES = (("reasoning", "thinking"), ("text.format", "output_config.format"), ("max_output_tokens", "max_tokens"),
            ("instructions", "system"), ("tools[", "tools."), ("safety_identifier", "metadata.user_id"))


def rename_param(exc: ResponsaError, req: MessagesRequest) -> ResponsaError:
    """``exc`` naming the Messages parameter its Responses parameter came
    from. Anthropic's error shape has no ``param``: as in Anthropic's own
    messages (``max_tokens: Field required``), the message starts with it."""
    if (exc.param or "").startswith("input"):
        exc = rename_input(exc, req.origins, "messages")
    else:
        exc = rename_prefix(exc, _RENAMES)
    if exc.param and exc.param not in exc.message:
        exc.message = f"{exc.param}: {exc.message}"
    return exc


# -- response ------------------------------------------------------------------


def stop_reason(response: Response) -> str:
    output = response.get("output") or []
    if any(it.get("type") == "function_call" for it in output):
        return "tool_use"
    if response.get("status") == "incomplete":
        return "max_tokens"
    if any(p.get("type") == "refusal" for it in output if it.get("type") == "message" for p in it.get("content", [])):
        return "refusal"
    return "end_turn"


def usage(response: Response) -> Json:
    u = response.get("usage") or {}
    return {"input_tokens": u.get("input_tokens", 0), "output_tokens": u.get("output_tokens", 0),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": (u.get("input_tokens_details") or {}).get("cached_tokens", 0)}


def _reasoning_text(item: Item) -> str:
    return "".join(p.get("text", "") for p in (item.get("content") or item.get("summary") or []))


def _thinking_block(item: Item, shown: bool) -> Json:
    return {"type": "thinking", "thinking": _reasoning_text(item) if shown else "",
            "signature": item.get("encrypted_content") or ""}


def message(response: Response, req: MessagesRequest) -> Json:
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
        elif item.get("type") == "reasoning":
            content.append(_thinking_block(item, req.show_thinking))
    return {"id": response["id"], "type": "message", "role": "assistant", "model": response["model"],
            "content": content, "stop_reason": stop_reason(response), "stop_sequence": None,
            "usage": usage(response)}


class StreamEncoder:
    """Responses events -> Anthropic stream events: one content block per
    reasoning item (``thinking``), text part (``text``) or client tool call
    (``tool_use``), opened and closed as the engine's items are."""

    def __init__(self, req: MessagesRequest) -> None:
        self.req = req
        self.index = -1
        self.blocks: dict[int, int] = {}

    def _open(self, output_index: int, block: Json) -> Json:
        self.index += 1
        self.blocks[output_index] = self.index
        return {"type": "content_block_start", "index": self.index, "content_block": block}

    def _delta(self, ev: Event, delta: Json) -> Iterator[Json]:
        if ev["output_index"] in self.blocks:
            yield {"type": "content_block_delta", "index": self.blocks[ev["output_index"]], "delta": delta}

    def feed(self, ev: Event) -> Iterator[Json]:
        etype = ev["type"]
        if etype == E.CREATED:
            r = ev["response"]
            yield {"type": "message_start", "message": {
                "id": r["id"], "type": "message", "role": "assistant", "model": r["model"], "content": [],
                "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}
            yield {"type": "ping"}
        elif etype == E.ITEM_ADDED and ev["item"].get("type") == "function_call":
            item = ev["item"]
            yield self._open(ev["output_index"], {"type": "tool_use", "id": item["call_id"], "name": item["name"],
                                                  "input": {}})
        elif etype == E.ITEM_ADDED and ev["item"].get("type") == "reasoning":
            yield self._open(ev["output_index"], {"type": "thinking", "thinking": "", "signature": ""})
        elif etype == E.PART_ADDED:
            yield self._open(ev["output_index"], {"type": "text", "text": ""})
        elif etype in (E.TEXT_DELTA, E.REFUSAL_DELTA):
            yield from self._delta(ev, {"type": "text_delta", "text": ev["delta"]})
        elif etype in (E.REASONING_DELTA, E.SUMMARY_DELTA) and self.req.show_thinking:
            yield from self._delta(ev, {"type": "thinking_delta", "thinking": ev["delta"]})
        elif etype == "response.function_call_arguments.delta":
            yield from self._delta(ev, {"type": "input_json_delta", "partial_json": ev["delta"]})
        elif etype == E.PART_DONE or (etype == E.ITEM_DONE and ev["item"].get("type") in ("function_call",
                                                                                          "reasoning")):
            if ev["output_index"] in self.blocks:
                if etype == E.ITEM_DONE and ev["item"].get("type") == "reasoning":
                    yield from self._delta(ev, {"type": "signature_delta",
                                                "signature": ev["item"].get("encrypted_content") or ""})
                yield {"type": "content_block_stop", "index": self.blocks.pop(ev["output_index"])}
        elif etype in (E.COMPLETED, E.INCOMPLETE):
            r = ev["response"]
            yield {"type": "message_delta", "delta": {"stop_reason": stop_reason(r), "stop_sequence": None},
                   "usage": usage(r)}
            yield {"type": "message_stop"}
