"""Anthropic Messages API adapter.

Translates the provider-neutral ``ModelRequest`` into a Messages request and
the Messages SSE stream back into ``ModelEvent``s. Where Anthropic lacks a
Responses feature we either emulate it faithfully (structured output through
a forced tool) or refuse with a 400 naming the parameter — never drop it
silently, because a client that asked for a penalty or JSON would otherwise
get a plausible but wrong answer.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from responsa.config import ProviderConfig
from responsa.providers._http import HTTP_OPTIONS, HTTPProvider
from responsa.providers._reasoning import tag, untag
from responsa.providers.base import (
    Capabilities,
    Finish,
    FinishReason,
    Item,
    ModelEvent,
    ModelRequest,
    ProviderError,
    ReasoningDelta,
    ReasoningDone,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from responsa.providers.registry import register

Json = dict[str, Any]

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
JSON_TOOL = "json_output"
"""The forced tool that carries emulated structured output; its input is
streamed back to the client as output text."""

_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768}
_FAMILY = "anthropic"
_REDACTED = "redacted:"
"""Prefix marking our (untagged) state as a redacted_thinking payload; signatures
are base64 and never contain ':', so the two cannot be confused."""

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Error types of mid-stream ``error`` events -> (our status, retryable); any
# other type is an upstream fault (502, retryable). HTTP errors before the
# stream are mapped by the shared ``_http`` layer.
_STREAM_ERRORS: dict[str, tuple[int, bool]] = {
    "invalid_request_error": (400, False),
    "rate_limit_error": (429, True),
    "overloaded_error": (503, True),
}


def _invalid(message: str, param: str | None = None) -> ProviderError:
    return ProviderError(message, status=400, type="invalid_request_error", code="invalid_request_error",
                         param=param, retryable=False)


def _stream_error(err: Json) -> ProviderError:
    etype = str(err.get("type", "api_error"))
    status, retryable = _STREAM_ERRORS.get(etype, (502, True))
    kind = {400: "invalid_request_error", 429: "rate_limit_error"}.get(status, "server_error")
    return ProviderError(str(err.get("message") or "Anthropic reported an error mid-stream."), status=status,
                         type=kind, code=etype, retryable=retryable)


# --- request translation --------------------------------------------------------


def _data_url(url: str) -> tuple[str, str] | None:
    """``data:<type>;base64,<data>`` -> (media type, data)."""
    if not url.startswith("data:"):
        return None
    header, _, data = url[5:].partition(",")
    return header.split(";")[0], data


def _image_block(part: Json) -> Json:
    url = part.get("image_url")
    if not isinstance(url, str):
        raise _invalid("Anthropic models accept images only as image_url (data: or http(s) URLs).",
                       "input.image_url")
    if parsed := _data_url(url):
        return {"type": "image", "source": {"type": "base64", "media_type": parsed[0], "data": parsed[1]}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _file_block(part: Json) -> Json:
    if url := part.get("file_url"):
        return {"type": "document", "source": {"type": "url", "url": url}}
    data = part.get("file_data")
    if not isinstance(data, str):
        raise _invalid("Anthropic models accept files only as file_data or file_url.", "input.file_data")
    media, b64 = _data_url(data) or (mimetypes.guess_type(part.get("filename") or "")[0], data)
    if media == "application/pdf":
        return {"type": "document", "source": {"type": "base64", "media_type": media, "data": b64}}
    if media == "text/plain":
        text = base64.b64decode(b64).decode("utf-8", "replace")
        return {"type": "document", "source": {"type": "text", "media_type": media, "data": text}}
    raise _invalid(f"Anthropic models accept PDF and plain-text files, not {media or 'unknown type'}.",
                   "input.file_data")


def _content_blocks(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Json] = []
    for part in content or []:
        ptype = part.get("type")
        if ptype in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif ptype == "refusal":
            blocks.append({"type": "text", "text": part.get("refusal", "")})
        elif ptype == "input_image":
            blocks.append(_image_block(part))
        elif ptype == "input_file":
            blocks.append(_file_block(part))
        else:
            raise _invalid(f"Content part type '{ptype}' is not supported by Anthropic models.", "input")
    return blocks


def _text_of(content: Any) -> str:
    return "\n\n".join(b["text"] for b in _content_blocks(content) if b["type"] == "text")


def _thinking_block(item: Item) -> Json | None:
    """Only reasoning Anthropic produced (it carries a signature) can go back:
    the API verifies the signature against the thinking text, so reasoning from
    another family is dropped whole (an unsigned thinking block is rejected, and
    its text as plain assistant text would put words in the model's mouth)."""
    sig = untag(_FAMILY, item.get("encrypted_content"))
    if not sig:
        return None
    if sig.startswith(_REDACTED):
        return {"type": "redacted_thinking", "data": sig[len(_REDACTED):]}
    parts = item.get("content") or item.get("summary") or []
    return {"type": "thinking", "thinking": "".join(p.get("text", "") for p in parts), "signature": sig}


def _arguments(item: Item) -> Json:
    try:
        args = orjson.loads(item.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise _invalid(f"function_call {item.get('call_id')} has arguments that are not a JSON object.",
                       "input")
    return args


def _messages(req: ModelRequest) -> tuple[list[str], list[Json]]:
    """Items -> (system texts, alternating messages). System and developer
    messages are hoisted because Anthropic has one top-level system prompt."""
    system = [req.instructions] if req.instructions else []
    turns: list[tuple[str, list[Json]]] = []
    for item in req.items:
        itype = item.get("type", "message")
        role, blocks = "user", []
        if itype == "message":
            role = item.get("role", "user")
            if role in ("system", "developer"):
                if text := _text_of(item.get("content")):
                    system.append(text)
                continue
            blocks = _content_blocks(item.get("content"))
        elif itype == "function_call":
            role = "assistant"
            blocks = [{"type": "tool_use", "id": item["call_id"], "name": item["name"],
                       "input": _arguments(item)}]
        elif itype == "function_call_output":
            output = item.get("output")
            result = output if isinstance(output, str) else _content_blocks(output)
            blocks = [{"type": "tool_result", "tool_use_id": item["call_id"], "content": result}]
        elif itype == "reasoning":
            role = "assistant"
            blocks = [b] if (b := _thinking_block(item)) else []
        # Other items (mcp_list_tools, ...) are engine bookkeeping with no model meaning.
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    return system, [{"role": role, "content": blocks} for role, blocks in turns]


def _tools(req: ModelRequest) -> list[Json]:
    tools = []
    for tool in req.tools:
        if tool.get("type") != "function":
            raise _invalid(f"Tool type '{tool.get('type')}' is not supported by Anthropic models.", "tools")
        spec: Json = {"name": tool["name"],
                      "input_schema": tool.get("parameters") or {"type": "object", "properties": {}}}
        if tool.get("description"):
            spec["description"] = tool["description"]
        tools.append(spec)
    return tools


def _tool_choice(choice: str | Json, has_json_tool: bool, has_tools: bool) -> Json:
    """With emulated JSON output the model must end in ``json_output``: forced
    outright, or via ``any`` when the client's own tools may be called first."""
    if choice == "none":
        return {"type": "tool", "name": JSON_TOOL} if has_json_tool else {"type": "none"}
    if choice == "auto":
        if has_json_tool:
            return {"type": "any"} if has_tools else {"type": "tool", "name": JSON_TOOL}
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        return {"type": "tool", "name": choice["name"]}
    raise _invalid(f"tool_choice {choice!r} is not supported by Anthropic models.", "tool_choice")


def _json_tool(fmt: Json) -> Json | None:
    if fmt.get("type") == "json_schema":
        return {"name": JSON_TOOL, "description": fmt.get("description") or
                f"Respond with the final answer ({fmt.get('name', 'output')}) as this tool's input.",
                "input_schema": fmt.get("schema") or {"type": "object"}}
    if fmt.get("type") == "json_object":
        return {"name": JSON_TOOL, "description": "Respond with the final answer as a JSON object.",
                "input_schema": {"type": "object", "additionalProperties": True}}
    return None


def build_body(req: ModelRequest, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> Json:
    """The Messages request body for ``req`` (without ``stream``)."""
    for param in ("presence_penalty", "frequency_penalty"):
        if getattr(req, param):
            raise _invalid(f"{param} is not supported by Anthropic models.", param)
    if req.top_logprobs:
        raise _invalid("top_logprobs is not supported by Anthropic models.", "top_logprobs")
    system, messages = _messages(req)
    body: Json = {"model": req.model, "messages": messages,
                  "max_tokens": req.max_output_tokens or default_max_tokens}
    if system:
        body["system"] = "\n\n".join(system)
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.user:
        body["metadata"] = {"user_id": req.user}

    effort = (req.reasoning or {}).get("effort")
    if effort and effort != "none":
        if effort not in _BUDGETS:
            raise _invalid(f"reasoning.effort '{effort}' is not supported.", "reasoning.effort")
        # Anthropic needs max_tokens > budget; the budget is granted on top of
        # the requested output so thinking cannot starve the visible answer.
        body["thinking"] = {"type": "enabled", "budget_tokens": _BUDGETS[effort]}
        body["max_tokens"] += _BUDGETS[effort]

    user_tools = _tools(req)
    # A specific or required tool call comes before any final answer, so the
    # JSON tool only joins when the model is free to answer this turn.
    json_tool = _json_tool(req.text_format) if req.tool_choice in ("auto", "none") else None
    tools = [*user_tools, json_tool] if json_tool else user_tools
    if tools:
        choice = _tool_choice(req.tool_choice, json_tool is not None, bool(user_tools))
        if "thinking" in body and choice["type"] in ("any", "tool"):
            raise _invalid("Anthropic models cannot force a tool call (tool_choice or emulated JSON "
                           "output) while reasoning is enabled.", "reasoning.effort")
        if choice["type"] != "none" and (not req.parallel_tool_calls or json_tool):
            choice["disable_parallel_tool_use"] = True
        body["tools"], body["tool_choice"] = tools, choice
    _settings(req.extra, body)
    return body


def _settings(extra: Json, body: Json) -> None:
    """The model entry's ``settings`` merged last, as every adapter does;
    ``stop`` (what the Chat Completions and Messages doors put there) is
    Anthropic's ``stop_sequences``. Keys Anthropic does not know (``seed``)
    reach it and come back as its 400, never silently dropped."""
    for key, value in extra.items():
        if key == "stop":
            body["stop_sequences"] = [value] if isinstance(value, str) else value
        else:
            body[key] = value


# --- stream translation ---------------------------------------------------------


@dataclass(slots=True)
class _Block:
    type: str
    tool_index: int = -1
    is_json: bool = False
    emitted: bool = False
    signature: str = ""


@dataclass(slots=True)
class _Translator:
    """Turns Messages SSE payloads into ModelEvents, one payload at a time."""

    blocks: dict[int, _Block] = field(default_factory=dict)
    tools: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None
    done: bool = False

    def _usage(self, usage: Json | None) -> None:
        for key, value in (usage or {}).items():
            if isinstance(value, int):
                self.usage[key] = value

    def feed(self, event: str, data: Json) -> list[ModelEvent]:
        if event == "message_start":
            self._usage(data.get("message", {}).get("usage"))
        elif event == "content_block_start":
            return self._start(data["index"], data["content_block"])
        elif event == "content_block_delta":
            return self._delta(self.blocks[data["index"]], data["delta"])
        elif event == "content_block_stop":
            return self._stop(self.blocks.pop(data["index"]))
        elif event == "message_delta":
            self.stop_reason = data.get("delta", {}).get("stop_reason") or self.stop_reason
            self._usage(data.get("usage"))
        elif event == "message_stop":
            self.done = True
            return [self._final_usage(), self._finish()]
        elif event == "error":
            raise _stream_error(data.get("error") or {})
        return []

    def _start(self, index: int, cb: Json) -> list[ModelEvent]:
        block = self.blocks[index] = _Block(cb["type"])
        if cb["type"] == "text" and cb.get("text"):
            return [TextDelta(cb["text"])]
        if cb["type"] == "thinking" and cb.get("thinking"):
            block.emitted = True
            return [ReasoningDelta(cb["thinking"])]
        if cb["type"] == "redacted_thinking":
            block.signature = _REDACTED + cb.get("data", "")
        elif cb["type"] == "tool_use":
            if cb["name"] == JSON_TOOL:
                block.is_json = True
                return []
            block.tool_index, self.tools = self.tools, self.tools + 1
            return [ToolCallStart(block.tool_index, cb["id"], cb["name"])]
        return []

    def _args(self, block: _Block, text: str) -> ModelEvent:
        block.emitted = True
        return TextDelta(text) if block.is_json else ToolCallDelta(block.tool_index, text)

    def _delta(self, block: _Block, delta: Json) -> list[ModelEvent]:
        dtype = delta.get("type")
        if dtype == "text_delta":
            return [TextDelta(delta["text"])]
        if dtype == "thinking_delta":
            block.emitted = True
            return [ReasoningDelta(delta["thinking"])]
        if dtype == "signature_delta":
            block.signature += delta["signature"]
        elif dtype == "input_json_delta" and delta.get("partial_json"):
            return [self._args(block, delta["partial_json"])]
        return []

    def _stop(self, block: _Block) -> list[ModelEvent]:
        if block.type in ("thinking", "redacted_thinking"):
            # The engine opens a reasoning item on its first delta; a block with
            # no visible text (redacted) still needs one to carry its payload.
            opened: list[ModelEvent] = [] if block.emitted else [ReasoningDelta("")]
            state = tag(_FAMILY, block.signature) if block.signature else None
            return [*opened, ReasoningDone(encrypted_content=state)]
        if block.type == "tool_use" and not block.emitted:
            return [self._args(block, "{}")]
        return []

    def _final_usage(self) -> Usage:
        u = self.usage
        cached = u.get("cache_read_input_tokens", 0)
        return Usage(input_tokens=u.get("input_tokens", 0) + cached + u.get("cache_creation_input_tokens", 0),
                     output_tokens=u.get("output_tokens", 0), cached_tokens=cached)

    def _finish(self) -> Finish:
        reason = _FINISH.get(self.stop_reason or "end_turn", "stop")
        if reason == "tool_calls" and not self.tools:
            reason = "stop"  # only the emulated JSON tool was called: that is the answer
        return Finish(reason)


# --- provider ---------------------------------------------------------------------


class AnthropicProvider(HTTPProvider):
    default_base_url = "https://api.anthropic.com"
    default_capabilities = Capabilities(tools=True, vision=True, json_schema=True, reasoning=True,
                                        logprobs=False, context_window=200_000,
                                        native_files=frozenset({"application/pdf"}))

    def __init__(self, cfg: ProviderConfig) -> None:
        # Paths are relative to /v1 (shared list_models asks for "models"), but
        # Anthropic base URLs are conventionally given without it.
        base = (cfg.base_url or self.default_base_url or "").rstrip("/").removesuffix("/v1")
        self._version = str(cfg.options.get("anthropic_version", API_VERSION))
        self._max_tokens = int(cfg.options.get("max_tokens", DEFAULT_MAX_TOKENS))
        super().__init__(replace(cfg, base_url=base + "/v1"))

    def _auth_headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": self._version}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    async def stream(self, req: ModelRequest) -> AsyncIterator[ModelEvent]:
        body = build_body(req, self._max_tokens)
        body["stream"] = True
        translator = _Translator()
        async for data in self._stream_json("messages", body):
            for ev in translator.feed(data.get("type", ""), data):
                yield ev
            if translator.done:
                return
        raise ProviderError("Anthropic stream ended before message_stop.", code="upstream_incomplete")


@register("anthropic", options=HTTP_OPTIONS | {"anthropic_version", "max_tokens"})
def make(cfg: ProviderConfig) -> AnthropicProvider:
    return AnthropicProvider(cfg)
