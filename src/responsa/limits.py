"""Documented per-request limits, and keeping CPU-heavy request work off
the event loop.

One request must not be able to stall every other: 20,000 function tools
(a 2 MB body) once froze the whole server for 10-20 s (issue 15, fault 4).
Three defences, all linear in the body size:

- hard limits, checked first and cheaply (a 400 naming the parameter):
  ``MAX_TOOLS`` entries in ``tools``, ``MAX_INPUT_ITEMS`` items in ``input``,
  ``MAX_SCHEMA_BYTES`` for one JSON schema (a tool's ``parameters``, or
  ``text.format.schema``);
- every validation step linear (sets, not list scans);
- a request heavier than ``HEAVY_BYTES`` of tools + input has its CPU-bound
  preparation (schema checks, tokenizing for ``truncation``) run in a worker
  thread, so the event loop keeps serving other requests meanwhile (tiktoken
  releases the GIL; pure-Python validation yields it every 5 ms).

OpenAI itself allows 128 tools; these limits are generous on purpose and
sit far below what hurts (measured: 1,000 strict tools prepare in ~0.3 s,
off the loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import orjson

from responsa.protocol.errors import invalid

MAX_TOOLS = 1000
MAX_INPUT_ITEMS = 10_000
MAX_SCHEMA_BYTES = 256 * 1024
HEAVY_BYTES = 256 * 1024

P = ParamSpec("P")
T = TypeVar("T")


def _size(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return 0


def check_request(tools: list[Any] | None, input: Any, text: dict[str, Any] | None) -> bool:
    """Raise a 400 for a request over a limit; return whether it is heavy
    enough to prepare off the event loop."""
    tools = tools or []
    if len(tools) > MAX_TOOLS:
        raise invalid(f"Too many tools: {len(tools)} (this server accepts at most {MAX_TOOLS}).", "tools",
                      "too_many_tools")
    if isinstance(input, list) and len(input) > MAX_INPUT_ITEMS:
        raise invalid(f"Too many input items: {len(input)} (this server accepts at most {MAX_INPUT_ITEMS} per "
                      "request; longer histories belong in previous_response_id or a conversation).", "input",
                      "too_many_items")
    weight = 0
    for i, tool in enumerate(tools):
        size = _size(tool.get("parameters")) if isinstance(tool, dict) else 0
        if size > MAX_SCHEMA_BYTES:
            raise invalid(f"'tools[{i}].parameters' is {size} bytes of JSON schema (limit {MAX_SCHEMA_BYTES}).",
                          f"tools[{i}].parameters", "schema_too_large")
        weight += size
    fmt = (text or {}).get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict):
        size = _size(fmt.get("schema"))
        if size > MAX_SCHEMA_BYTES:
            raise invalid(f"'text.format.schema' is {size} bytes of JSON schema (limit {MAX_SCHEMA_BYTES}).",
                          "text.format.schema", "schema_too_large")
    if weight <= HEAVY_BYTES:
        weight += len(input) if isinstance(input, str) else _size(input)
    return weight > HEAVY_BYTES or len(tools) > 64


async def offload(heavy: bool, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, in a worker thread when ``heavy``."""
    if heavy:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)
