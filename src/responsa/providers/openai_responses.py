"""Provider for upstreams that speak the Responses API natively (OpenAI, Azure).

Responsa keeps conversation state itself, so every call is ``store: false``
with the full context as ``input``. That has two consequences handled here:
upstream never sees ids it did not issue (they would be looked up and fail),
and reasoning survives between turns only as ``encrypted_content``.

Reasoning state is emitted as ``openai:<upstream item id>:<encrypted>``
(see ``_reasoning``): the upstream's own ``rs_`` id travels inside the state,
so the item goes back exactly as upstream issued it (id + encrypted content)
while Responsa's own reasoning ids never leave. Reasoning from any other
family (or untagged) is dropped: its state would be rejected, and a reasoning
item cannot carry plain text under ``store: false``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from responsa.config import ProviderConfig
from responsa.providers._http import HTTP_OPTIONS, HTTPProvider, upstream_error
from responsa.providers._reasoning import tag, untag
from responsa.providers.base import (
    Capabilities,
    Finish,
    HostedItem,
    Item,
    ModelEvent,
    ModelRequest,
    Provider,
    ProviderError,
    ReasoningDelta,
    ReasoningDone,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from responsa.providers.registry import register

Json = dict[str, Any]

_ENCRYPTED = "reasoning.encrypted_content"
_FAMILY = "openai"
_PASSTHROUGH = frozenset({"message", "function_call", "function_call_output"})
HOSTED_ITEMS = frozenset({"image_generation_call", "code_interpreter_call", "program", "program_output"})
"""Output items of tools OpenAI runs itself (``tools.hosted``): passed to the
client as made, and back to the upstream verbatim (with their ids)."""


@register("openai-responses", options=HTTP_OPTIONS)
def make(cfg: ProviderConfig) -> Provider:
    return OpenAIResponsesProvider(cfg)


class OpenAIResponsesProvider(HTTPProvider):
    embeddings_path = "embeddings"
    default_base_url = "https://api.openai.com/v1"
    default_capabilities = Capabilities(reasoning=True, logprobs=True, responses_native=True,
                                        native_files=frozenset({"*"}))

    async def stream(self, req: ModelRequest) -> AsyncIterator[ModelEvent]:
        decoder = _Decoder()
        async for event in self._stream_json("responses", build_body(req)):
            for model_event in decoder.feed(event):
                yield model_event
            if decoder.done:
                return
        raise ProviderError("The upstream stream ended before the response completed.")


def build_body(req: ModelRequest) -> Json:
    items = _input(req.items)
    body: Json = {"model": req.model, "input": items, "stream": True, "store": False,
                  "text": {"format": req.text_format}}
    if req.tools:
        body.update(tools=req.tools, tool_choice=req.tool_choice, parallel_tool_calls=req.parallel_tool_calls)
    for key, value in (("instructions", req.instructions), ("temperature", req.temperature),
                       ("top_p", req.top_p), ("presence_penalty", req.presence_penalty),
                       ("frequency_penalty", req.frequency_penalty),
                       ("max_output_tokens", req.max_output_tokens), ("top_logprobs", req.top_logprobs),
                       ("reasoning", req.reasoning), ("user", req.user)):
        if value is not None:
            body[key] = value
    # Asked only of reasoning models: others reject the include outright.
    reasons = req.reasoning is not None or any(i["type"] == "reasoning" for i in items)
    include = list(dict.fromkeys([*req.include, *([_ENCRYPTED] if reasons else [])]))
    if include:
        body["include"] = include
    body.update(req.native)
    body.update(req.extra)
    return body


def _input(items: list[Item]) -> list[Item]:
    """Ids are Responsa's, unknown upstream, so they are stripped; reasoning
    without this family's state cannot be resolved under ``store: false`` and
    is dropped, as are item types only Responsa itself understands."""
    out: list[Item] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "reasoning":
            upstream_id, _, encrypted = (untag(_FAMILY, item.get("encrypted_content")) or "").partition(":")
            if encrypted:
                out.append({"type": "reasoning", "summary": item.get("summary") or [],
                            **({"id": upstream_id} if upstream_id else {}), "encrypted_content": encrypted})
        elif kind in _PASSTHROUGH:
            out.append({"type": kind, **{k: v for k, v in item.items() if k not in ("id", "type")}})
        elif kind in HOSTED_ITEMS:
            out.append(item)  # upstream's own item (and id), as it made it
    return out


class _Decoder:
    def __init__(self) -> None:
        self.done = False
        self.has_calls = False
        self.args_seen: set[int] = set()

    def feed(self, ev: Json) -> Iterator[ModelEvent]:
        match ev.get("type"):
            case "response.output_text.delta":
                yield TextDelta(ev["delta"], ev.get("logprobs") or None)
            case "response.refusal.delta":
                yield RefusalDelta(ev["delta"])
            case "response.reasoning_text.delta":
                yield ReasoningDelta(ev["delta"])
            case "response.reasoning_summary_text.delta":
                yield ReasoningDelta(ev["delta"], summary=True)
            case "response.reasoning_summary_part.added" if ev.get("summary_index", 0) > 0:
                # The engine keeps one summary part; keep upstream's parts apart.
                yield ReasoningDelta("\n\n", summary=True)
            case "response.output_item.added" if ev["item"].get("type") == "function_call":
                self.has_calls = True
                yield ToolCallStart(ev["output_index"], ev["item"]["call_id"], ev["item"]["name"])
            case "response.function_call_arguments.delta":
                self.args_seen.add(ev["output_index"])
                yield ToolCallDelta(ev["output_index"], ev["delta"])
            case "response.output_item.done":
                yield from self._item_done(ev["output_index"], ev["item"])
            case "response.completed" | "response.incomplete":
                yield from self._end(ev["response"], incomplete=ev["type"] == "response.incomplete")
            case "response.failed":
                error = ev["response"].get("error") or {}
                status = 429 if error.get("code") == "rate_limit_exceeded" else 502
                raise upstream_error(status, {"error": error})
            case "error":
                raise upstream_error(429 if ev.get("code") == "rate_limit_exceeded" else 502,
                                     ev if "error" in ev else {"error": ev})

    def _item_done(self, index: int, item: Json) -> Iterator[ModelEvent]:
        if item.get("type") in HOSTED_ITEMS:
            yield HostedItem(item)
        elif item.get("type") == "reasoning":
            encrypted = item.get("encrypted_content")
            yield ReasoningDone(tag(_FAMILY, f"{item.get('id') or ''}:{encrypted}") if encrypted else None)
        elif item.get("type") == "function_call" and index not in self.args_seen and item.get("arguments"):
            # Some proxies only send the finished call, never argument deltas.
            yield ToolCallDelta(index, item["arguments"])

    def _end(self, response: Json, *, incomplete: bool) -> Iterator[ModelEvent]:
        self.done = True
        if usage := response.get("usage"):
            yield Usage(input_tokens=usage.get("input_tokens") or 0,
                        output_tokens=usage.get("output_tokens") or 0,
                        cached_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens") or 0,
                        reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens")
                        or 0)
        if incomplete:
            reason = (response.get("incomplete_details") or {}).get("reason")
            yield Finish("content_filter" if reason == "content_filter" else "length")
        else:
            yield Finish("tool_calls" if self.has_calls else "stop")
