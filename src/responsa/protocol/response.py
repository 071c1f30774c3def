"""The Response object: every key the spec requires, nullable ones as
explicit ``null``, plus the extras the reference client reads (``created``,
``conversation_id``)."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from responsa.protocol.events import TERMINAL as TERMINAL  # re-exported: the fan-out reads it here
from responsa.protocol.types import Response


def empty_usage() -> dict[str, Any]:
    return {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0}}


def _text(text: dict[str, Any] | None) -> dict[str, Any]:
    """The spec requires ``description`` and ``strict`` on a json_schema
    format, which clients usually omit; echo them with their defaults."""
    if not text:
        return {"format": {"type": "text"}}
    fmt = text.get("format")
    if fmt is None:  # e.g. only a verbosity (Codex): the format is still text, and the spec requires it
        return {**text, "format": {"type": "text"}}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return {**text, "format": {"description": None, "strict": False, **fmt}}
    return text


def new_response(
    *,
    id: str,
    model: str,
    status: str,
    instructions: str | None,
    tools: list[dict[str, Any]],
    tool_choice: Any,
    params: dict[str, Any],
    previous_response_id: str | None,
    conversation_id: str | None,
    store: bool,
    background: bool,
    metadata: dict[str, str],
) -> Response:
    now = int(time.time())
    return {
        "id": id,
        "object": "response",
        "created_at": now,
        "created": now,
        "completed_at": None,
        "status": status,
        "incomplete_details": None,
        "model": model,
        "previous_response_id": previous_response_id,
        "instructions": instructions,
        "output": [],
        "error": None,
        "tools": tools,
        "tool_choice": tool_choice,
        "truncation": params.get("truncation") or "disabled",
        "parallel_tool_calls": params.get("parallel_tool_calls", True) is not False,
        "text": _text(params.get("text")),
        "top_p": params.get("top_p") if params.get("top_p") is not None else 1.0,
        "presence_penalty": params.get("presence_penalty") or 0.0,
        "frequency_penalty": params.get("frequency_penalty") or 0.0,
        "top_logprobs": params.get("top_logprobs") or 0,
        "temperature": params.get("temperature") if params.get("temperature") is not None else 1.0,
        "reasoning": {"effort": (params.get("reasoning") or {}).get("effort"),
                      "summary": (params.get("reasoning") or {}).get("summary")},
        "usage": None,
        "max_output_tokens": params.get("max_output_tokens"),
        "max_tool_calls": params.get("max_tool_calls"),
        "store": store,
        "background": background,
        # OpenAI reports "fast" as the tier it is: "priority".
        "service_tier": {"fast": "priority"}.get(params.get("service_tier") or "default",
                                                 params.get("service_tier") or "default"),
        "metadata": metadata,
        "safety_identifier": params.get("safety_identifier"),
        "prompt_cache_key": params.get("prompt_cache_key"),
        "user": params.get("user"),
        "conversation": {"id": conversation_id} if conversation_id else None,
        "conversation_id": conversation_id,
        "prompt": params.get("prompt"),
        **{k: params[k] for k in _ECHOED if params.get(k) is not None},
    }


_ECHOED = ("prompt_cache_options", "prompt_cache_retention", "image", "access_programs")
"""Newer optional Response fields, present only when the request set them."""


_ENCRYPTED = "reasoning.encrypted_content"
_SOURCES = "web_search_call.action.sources"
_FILE_RESULTS = "file_search_call.results"


def _strip(item: Any, include: Collection[str]) -> Any:
    """``item`` without what the client did not ``include`` (the item itself when nothing changes)."""
    if not isinstance(item, dict):
        return item
    if item.get("type") == "reasoning" and "encrypted_content" in item and _ENCRYPTED not in include:
        return {k: v for k, v in item.items() if k != "encrypted_content"}
    action = item.get("action")
    if item.get("type") == "web_search_call" and isinstance(action, dict) and "sources" in action \
            and _SOURCES not in include:
        return {**item, "action": {k: v for k, v in action.items() if k != "sources"}}
    if item.get("type") == "file_search_call" and item.get("results") is not None and _FILE_RESULTS not in include:
        return {**item, "results": None}
    return item


def output_text(output: list[Any]) -> str:
    """The text of every ``output_text`` part of the output's messages."""
    return "".join(part.get("text") or "" for item in output
                   if isinstance(item, dict) and item.get("type") == "message"
                   for part in item.get("content") or []
                   if isinstance(part, dict) and part.get("type") == "output_text")


def visible(obj: dict[str, Any], include: Collection[str]) -> dict[str, Any]:
    """``obj`` (a Response or an event) as a client sees it given its
    ``include``: without encrypted reasoning, web search sources and file
    search results (``null``) unless asked for, as on OpenAI (the store keeps both, so ``previous_response_id``
    chains still round-trip the upstream's reasoning state and the model sees
    earlier results). A Response also gets ``output_text``: the reference
    client (``dedalus_labs``) reads it as a field, where ``openai`` computes it."""
    if "delta" in obj:  # a delta event (most of a stream) carries no item, response or output
        return obj
    out = obj
    if obj.get("object") == "response" and isinstance(obj.get("output"), list):
        out = {**out, "output_text": output_text(obj["output"])}
    item = obj.get("item")
    if (shown_item := _strip(item, include)) is not item:
        out = {**out, "item": shown_item}
    response = obj.get("response")
    if isinstance(response, dict):
        out = {**out, "response": visible(response, include)}
    output = obj.get("output")
    if isinstance(output, list):
        stripped = [_strip(it, include) for it in output]
        if any(x is not y for x, y in zip(stripped, output, strict=True)):
            out = {**out, "output": stripped}
    return out
