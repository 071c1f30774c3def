"""Provider for upstreams that speak the OpenAI Chat Completions wire format.

Chat Completions is the lingua franca of self-hosted and aggregator servers
(vLLM, Ollama, llama.cpp, OpenRouter, Groq...), so this one adapter reaches
most open models. The translation is deliberately conservative (developer
becomes system, text-only content is flattened to a string) because those
servers accept a narrower dialect than OpenAI itself.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from responsa.config import ProviderConfig
from responsa.providers._http import HTTP_OPTIONS, HTTPProvider, upstream_error
from responsa.providers.base import (
    Capabilities,
    Finish,
    FinishReason,
    Item,
    ModelEvent,
    ModelRequest,
    Provider,
    ProviderError,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from responsa.providers.registry import register

Json = dict[str, Any]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls",
    "content_filter": "content_filter",
}
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
_TEXT_MIME_PREFIXES = ("text/", "application/json", "application/xml", "application/x-yaml")


@register("chat-completions", options=HTTP_OPTIONS | {"max_tokens_param"})
def make(cfg: ProviderConfig) -> Provider:
    return ChatCompletionsProvider(cfg)


class ChatCompletionsProvider(HTTPProvider):
    embeddings_path = "embeddings"
    default_capabilities = Capabilities(reasoning=True, logprobs=True)

    async def stream(self, req: ModelRequest) -> AsyncIterator[ModelEvent]:
        decoder = _Decoder()
        async for chunk in self._stream_json("chat/completions", build_body(req, self._cfg.options)):
            for event in decoder.feed(chunk):
                yield event
        for event in decoder.end():
            yield event


# --- request ------------------------------------------------------------------


def build_body(req: ModelRequest, options: Json) -> Json:
    body: Json = {"model": req.model, "messages": _messages(req), "stream": True,
                  "stream_options": {"include_usage": True}}
    tools, choice = _tools(req)
    if tools:
        body.update(tools=tools, tool_choice=choice, parallel_tool_calls=req.parallel_tool_calls)
    fmt = req.text_format
    if fmt.get("type") == "json_schema":
        schema = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
        schema.update({k: fmt[k] for k in ("description", "strict") if fmt.get(k) is not None})
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif fmt.get("type") == "json_object":
        body["response_format"] = {"type": "json_object"}
    # OpenAI's own o-series reject max_tokens; everyone else only knows it.
    max_tokens_param = options.get("max_tokens_param", "max_tokens")
    for key, value in (("temperature", req.temperature), ("top_p", req.top_p),
                       ("presence_penalty", req.presence_penalty),
                       ("frequency_penalty", req.frequency_penalty),
                       (max_tokens_param, req.max_output_tokens), ("user", req.user)):
        if value is not None:
            body[key] = value
    if req.top_logprobs is not None or "message.output_text.logprobs" in req.include:
        body["logprobs"] = True
        if req.top_logprobs is not None:
            body["top_logprobs"] = req.top_logprobs
    if req.reasoning and req.reasoning.get("effort"):
        body["reasoning_effort"] = req.reasoning["effort"]
    body.update(req.extra)
    return body


def _messages(req: ModelRequest) -> list[Json]:
    """Reasoning items are dropped: servers disagree on whether (and where)
    prior reasoning may be sent back, and most reject or ignore it."""
    msgs: list[Json] = [{"role": "system", "content": req.instructions}] if req.instructions else []
    for item in req.items:
        kind = item.get("type", "message")
        if kind == "message":
            msgs.append(_message(item))
        elif kind == "function_call":
            # Chat puts an assistant turn's text and all its calls in one message.
            if not msgs or msgs[-1]["role"] != "assistant":
                msgs.append({"role": "assistant", "content": None})
            msgs[-1].setdefault("tool_calls", []).append({
                "id": item["call_id"], "type": "function",
                "function": {"name": item["name"], "arguments": item.get("arguments") or "{}"},
            })
        elif kind == "function_call_output":
            msgs.append({"role": "tool", "tool_call_id": item["call_id"],
                         "content": _content(_tool_output(item.get("output")))})
    return msgs


def _message(item: Item) -> Json:
    role = item.get("role", "user")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": "system" if role == "developer" else role, "content": content}
    parts = content or []
    if len(parts) == 1 and parts[0].get("type") in _TEXT_PARTS:
        # Nearly every message of a long history: what the general path below
        # makes of it, at a third of its cost (issue 16).
        return {"role": "system" if role == "developer" else role, "content": parts[0].get("text", "")}
    if role == "user":
        return {"role": "user", "content": _content([p for p in map(_part, parts) if p])}
    msg: Json = {"role": "system" if role == "developer" else role,
                 "content": "\n".join(p.get("text", "") for p in parts if p.get("type") in _TEXT_PARTS)}
    refusal = "".join(p.get("refusal", "") for p in parts if p.get("type") == "refusal")
    if refusal and role == "assistant":
        msg["refusal"] = refusal
    return msg


def _content(parts: list[Json]) -> str | list[Json]:
    """Text-only content as a plain string: the one form every server accepts."""
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _tool_output(output: Any) -> list[Json]:
    if isinstance(output, list):
        return [p for p in map(_part, output) if p]
    text = output if isinstance(output, str) else orjson.dumps(output).decode()
    return [{"type": "text", "text": text}]


def _part(part: Json) -> Json | None:
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": part.get("text", "")}
    if kind == "input_image":
        if not part.get("image_url"):
            raise ProviderError("This provider cannot resolve input_image file_id references; send image_url "
                                "(a URL or a data: URL) instead.", status=400, type="invalid_request_error",
                                code="unsupported_file_id", param="input", retryable=False)
        image = {"url": part["image_url"]}
        if part.get("detail") and part["detail"] != "auto":
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        return _file_part(part)
    return None


def _file_part(part: Json) -> Json | None:
    """Text files are inlined (every model can read text); other files use
    OpenAI's ``file`` part, which the servers that support documents accept."""
    name = part.get("filename") or "file"
    if data := part.get("file_data"):
        text = _text_from_data_url(data)
        if text is not None:
            return {"type": "text", "text": f"{name}:\n{text}"}
        return {"type": "file", "file": {"filename": name, "file_data": data}}
    if part.get("file_id"):
        return {"type": "file", "file": {"file_id": part["file_id"]}}
    if part.get("file_url"):
        return {"type": "text", "text": f"{name}: {part['file_url']}"}
    return None


def _text_from_data_url(data: str) -> str | None:
    header, sep, payload = data.partition(",")
    if not (sep and header.startswith("data:") and header.endswith(";base64")
            and header[5:].startswith(_TEXT_MIME_PREFIXES)):
        return None
    try:
        return base64.b64decode(payload).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _tools(req: ModelRequest) -> tuple[list[Json], str | Json]:
    tools = [t for t in req.tools if t.get("type") == "function"]
    choice: str | Json = req.tool_choice
    if isinstance(choice, dict):
        if choice.get("type") == "allowed_tools":
            allowed = {t.get("name") for t in choice.get("tools", [])}
            tools = [t for t in tools if t["name"] in allowed]
            choice = choice.get("mode", "auto")
        elif choice.get("type") == "function":
            choice = {"type": "function", "function": {"name": choice["name"]}}
        else:  # hosted/MCP choices have no Chat equivalent
            choice = "auto"
    fields = ("name", "description", "parameters", "strict")
    return [{"type": "function", "function": {k: t[k] for k in fields if t.get(k) is not None}}
            for t in tools], choice


# --- response stream ------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    call_id: str
    upstream_id: str | None
    name: str = ""
    pending: str = ""
    started: bool = False


class _Decoder:
    """Turns chunks into events. Finish and Usage wait for the end of the
    stream because servers send usage in a chunk *after* the finish_reason."""

    def __init__(self) -> None:
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.calls: list[_Call] = []
        self.slots: dict[int | None, int] = {}

    def feed(self, chunk: Json) -> list[ModelEvent]:
        """The events of one chunk (a list, not a generator: one chunk per
        token makes this the hottest function of a stream)."""
        if chunk.get("error"):
            raise upstream_error(502, chunk)
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        out: list[ModelEvent] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                out.append(ReasoningDelta(reasoning))
            content = delta.get("content")
            logprobs = (choice.get("logprobs") or {}).get("content")
            if (content and isinstance(content, str)) or logprobs:
                out.append(TextDelta(content or "", [_logprob(lp) for lp in logprobs] if logprobs else None))
            if delta.get("refusal"):
                out.append(RefusalDelta(delta["refusal"]))
            for call in delta.get("tool_calls") or ():
                self._tool_call(call, out)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def _tool_call(self, tc: Json, out: list[ModelEvent]) -> None:
        """A chunk continues the call at its ``index`` unless it carries a new
        id: some servers (Ollama) send every parallel call at index 0."""
        upstream_id = tc.get("id") or None
        index = tc.get("index")
        slot = self.slots.get(index)
        if slot is None or (upstream_id and self.calls[slot].upstream_id not in (None, upstream_id)):
            slot = self.slots[index] = len(self.calls)
            self.calls.append(_Call(upstream_id or f"call_{uuid.uuid4().hex[:24]}", upstream_id))
        call = self.calls[slot]
        fn = tc.get("function") or {}
        call.name = call.name or fn.get("name") or ""
        args = fn.get("arguments") or ""
        if not isinstance(args, str):
            args = orjson.dumps(args).decode()
        if not call.started:
            if not call.name:  # arguments before the name: hold them back
                call.pending += args
                return
            call.started = True
            out.append(ToolCallStart(slot, call.call_id, call.name))
            args = call.pending + args
        if args:
            out.append(ToolCallDelta(slot, args))

    def end(self) -> Iterator[ModelEvent]:
        if self.finish is None:
            raise ProviderError("The upstream stream ended before a finish_reason.")
        if self.usage:
            yield self.usage
        reason = _FINISH.get(self.finish, "stop")
        # Some servers (Ollama, older vLLM) report "stop" after tool calls.
        if reason == "stop" and any(c.started for c in self.calls):
            reason = "tool_calls"
        yield Finish(reason)


def _logprob(lp: Json) -> Json:
    def entry(e: Json) -> Json:
        return {"token": e["token"], "logprob": e["logprob"],
                "bytes": e.get("bytes") or list(e["token"].encode())}

    return {**entry(lp), "top_logprobs": [entry(t) for t in lp.get("top_logprobs") or ()]}


def _usage(u: Json) -> Usage:
    return Usage(input_tokens=u.get("prompt_tokens") or 0, output_tokens=u.get("completion_tokens") or 0,
                 cached_tokens=(u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
                 reasoning_tokens=(u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
