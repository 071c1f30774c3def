"""Token counting for ``/v1/responses/input_tokens`` and ``truncation``,
with the offline encodings of ``responsa.tokenizer``. OpenAI-family models
prefer ``o200k_base`` and fall back to ``cl100k_base``; with no encoding at
all the count is an estimate of one token per four characters.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from responsa.protocol.items import PART_FIELDS
from responsa.protocol.types import Item
from responsa.tokenizer import encoding

log = logging.getLogger("responsa.tokens")

Encode = Callable[[str], int]

ITEM_OVERHEAD = 4
"""Per-item framing tokens (role / separators), as in OpenAI's chat format."""
IMAGE_TOKENS = 765
"""An image's cost at ``detail: auto``/``high`` for a 1024x1024 tile set; we
do not decode images just to count them."""
_OPENAI_FAMILY = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-", "gpt-oss")


def _load(name: str) -> Encode | None:
    enc = encoding(name)
    if enc is None:
        return None
    return lambda text: len(enc.encode(text, disallowed_special=()))


@functools.cache
def encoder(model: str) -> Encode:
    """The counting function for an upstream model name."""
    bare = model.rpartition("/")[2].lower()
    preferred = ["o200k_base", "cl100k_base"] if bare.startswith(_OPENAI_FAMILY) else ["cl100k_base"]
    for name in preferred:
        enc = _encoding(name)
        if enc is not None:
            return enc
    return estimate


@functools.cache
def _encoding(name: str) -> Encode | None:
    return _load(name)


def estimate(text: str) -> int:
    """The documented fallback: about four characters per token."""
    return math.ceil(len(text) / 4)


def _part_text(part: dict[str, Any]) -> str:
    return part.get("text") or part.get("refusal") or part.get("file_data") or ""


def _part_image(part: dict[str, Any]) -> int:
    if part.get("type") != "input_image":
        return 0
    return 85 if part.get("detail") == "low" else IMAGE_TOKENS


def _texts(item: Item) -> Iterable[str]:
    itype = item.get("type")
    if itype == "message":
        content = item.get("content")
        if isinstance(content, str):
            yield content
            return
        for part in content or []:
            if isinstance(part, dict):
                yield _part_text(part)
    elif itype == "function_call":
        yield item.get("name") or ""
        yield item.get("arguments") or ""
    elif itype == "function_call_output":
        output = item.get("output")
        yield output if isinstance(output, str) else orjson.dumps(output).decode()
    elif itype == "reasoning":
        for part in [*(item.get("summary") or []), *(item.get("content") or [])]:
            if isinstance(part, dict):
                yield part.get("text") or ""
    else:
        yield orjson.dumps({k: v for k, v in item.items() if k != "id"}).decode()


def _image_cost(item: Item) -> int:
    if item.get("type") != "message" or not isinstance(item.get("content"), list):
        return 0
    return sum(_part_image(p) for p in item["content"] if isinstance(p, dict))


def item_tokens(item: Item, encode: Encode) -> int:
    return ITEM_OVERHEAD + sum(encode(t) for t in _texts(item) if t) + _image_cost(item)


def fixed_tokens(instructions: str | None, tools: list[dict[str, Any]], encode: Encode) -> int:
    """What every request spends besides its items: instructions and tool definitions."""
    total = (ITEM_OVERHEAD + encode(instructions)) if instructions else 0
    if tools:
        total += encode(orjson.dumps(tools).decode())
    return total


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode(errors="surrogatepass"))


@dataclass(slots=True)
class Survey:
    """What ``prepare`` asks of a context, gathered in one pass over it:
    the item types, the content part types of its messages, and a token
    bound for its items (``upper_bound`` without instructions and tools).
    The passes that rewrite only some kinds of item (compaction, tool type
    views, file inputs) skip a history without them, and truncation skips
    the tokenizer when the bound fits. One pass instead of one per question:
    at 2,000 items each was 0.1-0.7 ms a request (issue 16)."""

    types: set[str] = field(default_factory=set)
    parts: set[str] = field(default_factory=set)
    bound: int = 0

    def add(self, other: Survey) -> None:
        """Fold in the survey of items appended to this one's."""
        self.types |= other.types
        self.parts |= other.parts
        self.bound += other.bound


def survey(items: list[Item]) -> Survey:
    """The bound: a BPE token is at least one UTF-8 byte and the estimate
    is a quarter of the characters, so a text's UTF-8 length bounds both;
    images count as ``item_tokens`` counts them. Messages, nearly every item
    of a long history, are read inline."""
    types: set[str] = set()
    parts: set[str] = set()
    total = ITEM_OVERHEAD * len(items)
    for it in items:
        itype = it.get("type", "")
        types.add(itype)
        content = it.get("content") if itype == "message" else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    ptype = part.get("type", "")
                    parts.add(ptype)
                    text = _part_text(part)
                    total += len(text) if text.isascii() else _utf8_len(text)
                    if ptype == "input_image":
                        total += _part_image(part)
        else:
            total += sum(_utf8_len(t) for t in _texts(it))
            output = it.get("output") if PART_FIELDS.get(itype) == "output" else None
            if isinstance(output, list):  # a tool's output parts (an image, a file) count as parts too
                parts.update(p.get("type", "") for p in output if isinstance(p, dict))
    return Survey(types, parts, total)


def upper_bound(items: list[Item], instructions: str | None, tools: list[dict[str, Any]], *,
                surveyed: Survey | None = None) -> int:
    """A cheap bound no count here exceeds, so most requests skip
    tokenizing (``surveyed``: ``items``' survey, when the caller has it)."""
    fixed = ITEM_OVERHEAD + _utf8_len(instructions or "") + (len(orjson.dumps(tools)) if tools else 0)
    return fixed + (surveyed or survey(items)).bound


def count(items: list[Item], instructions: str | None, tools: list[dict[str, Any]], model: str) -> int:
    """Input tokens of a model call with this context."""
    encode = encoder(model)
    return fixed_tokens(instructions, tools, encode) + sum(item_tokens(it, encode) for it in items)
