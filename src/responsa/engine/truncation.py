"""Fitting a context into the model's window (the ``truncation`` parameter).

``auto`` drops the oldest items, but only at points where no function call
is separated from its output (providers reject an orphaned call or
output), and never the instructions, which are not items. ``disabled`` (the
default) turns an oversized context into a 400 instead of an upstream
failure.
"""

from __future__ import annotations

from typing import Any

from responsa.engine import tokens
from responsa.protocol.errors import invalid
from responsa.protocol.types import Item


def _cut_points(items: list[Item]) -> list[int]:
    """Indexes ``i`` where ``items[i:]`` holds no output whose call is in ``items[:i]``."""
    open_calls: set[str] = set()
    outputs_after: dict[str, int] = {}
    for i, it in enumerate(items):
        if it.get("type") == "function_call_output":
            outputs_after[it.get("call_id", "")] = i
    points = [0]
    for i, it in enumerate(items[:-1], start=1):
        if it.get("type") == "function_call":
            call_id = it.get("call_id", "")
            if outputs_after.get(call_id, -1) >= i:
                open_calls.add(call_id)
        elif it.get("type") == "function_call_output":
            open_calls.discard(it.get("call_id", ""))
        if not open_calls:
            points.append(i)
    return points


def surely_fits(items: list[Item], *, instructions: str | None, tools: list[dict[str, Any]], window: int,
                reserve: int, surveyed: tokens.Survey | None = None) -> bool:
    """Whether ``items`` fit by ``tokens.upper_bound`` alone: no tokenizer,
    cheap enough to run on the event loop (``fit`` may not be)."""
    return tokens.upper_bound(items, instructions, tools, surveyed=surveyed) <= window - reserve


def fit(items: list[Item], *, instructions: str | None, tools: list[dict[str, Any]], model: str,
        window: int, reserve: int, truncation: str | None) -> list[Item]:
    """``items`` unchanged if they fit in ``window - reserve`` tokens, else
    the longest fitting suffix (``auto``) or a 400 (``disabled``)."""
    if surely_fits(items, instructions=instructions, tools=tools, window=window, reserve=reserve):
        return items
    limit = window - reserve
    encode = tokens.encoder(model)
    fixed = tokens.fixed_tokens(instructions, tools, encode)
    sizes = [tokens.item_tokens(it, encode) for it in items]
    total = fixed + sum(sizes)
    if total <= limit:
        return items
    if truncation == "auto":
        dropped = 0
        prev = 0
        for point in _cut_points(items):
            dropped += sum(sizes[prev:point])
            prev = point
            if point and total - dropped <= limit:
                return items[point:]
    raise invalid(
        f"The input is {total} tokens, more than the {limit} this model allows"
        + (f" ({window}-token context window minus max_output_tokens {reserve})" if reserve else "")
        + (". Shorten the input or set truncation to 'auto'." if truncation != "auto"
           else ", even after dropping every earlier item."),
        "input", "context_length_exceeded")
