"""Cutting a file's text into overlapping chunks, as OpenAI's
``chunking_strategy`` describes them.

- ``auto``: 800-token chunks overlapping by 400 (OpenAI's documented
  default); a file created with it reports the static strategy it got,
  as OpenAI's files do.
- ``static``: ``max_chunk_size_tokens`` 100..4096 and
  ``chunk_overlap_tokens`` at most half of it.

Tokens are ``cl100k_base`` BPE tokens, the encoding the server counts with
(``responsa.tokenizer``); chunks are token windows decoded back to text, so
no text is lost or duplicated beyond the overlap. Without the encoding the
windows are measured in characters at four per token (the same estimate
``engine.tokens`` falls back to).
"""

from __future__ import annotations

from typing import Any

from responsa.protocol.errors import invalid
from responsa.tokenizer import encoding

AUTO_SIZE = 800
AUTO_OVERLAP = 400
MIN_SIZE = 100
MAX_SIZE = 4096
CHARS_PER_TOKEN = 4
MAX_CHUNKS_PER_FILE = 50_000
"""A file whose text would make more chunks is refused (``invalid_file``): each chunk is embedded."""

Strategy = dict[str, Any]
"""``{"type": "static", "static": {"max_chunk_size_tokens", "chunk_overlap_tokens"}}``."""


def static(size: int, overlap: int) -> Strategy:
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


def parse_strategy(raw: Any, param: str = "chunking_strategy") -> Strategy:
    """The strategy a file is chunked with (``auto`` resolved), or a 400 naming the parameter."""
    if raw is None:
        return static(AUTO_SIZE, AUTO_OVERLAP)
    if not isinstance(raw, dict):
        raise invalid(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    kind = raw.get("type")
    if kind == "auto":
        if set(raw) - {"type"}:
            extra = sorted(set(raw) - {"type"})[0]
            raise invalid(f"Unknown parameter: '{param}.{extra}'.", f"{param}.{extra}", "unknown_parameter")
        return static(AUTO_SIZE, AUTO_OVERLAP)
    if kind != "static":
        raise invalid(f"Invalid value for '{param}.type': {kind!r}. Supported values are: 'auto' and 'static'.",
                      f"{param}.type")
    if set(raw) - {"type", "static"}:
        extra = sorted(set(raw) - {"type", "static"})[0]
        raise invalid(f"Unknown parameter: '{param}.{extra}'.", f"{param}.{extra}", "unknown_parameter")
    body = raw.get("static")
    if not isinstance(body, dict):
        raise invalid(f"Missing required parameter: '{param}.static'.", f"{param}.static",
                      "missing_required_parameter")
    for key in body:
        if key not in ("max_chunk_size_tokens", "chunk_overlap_tokens"):
            raise invalid(f"Unknown parameter: '{param}.static.{key}'.", f"{param}.static.{key}",
                          "unknown_parameter")
    size = body.get("max_chunk_size_tokens")
    overlap = body.get("chunk_overlap_tokens")
    for name, value in (("max_chunk_size_tokens", size), ("chunk_overlap_tokens", overlap)):
        if type(value) is not int:
            raise invalid(f"Invalid '{param}.static.{name}': expected an integer.", f"{param}.static.{name}",
                          "invalid_type")
    assert isinstance(size, int) and isinstance(overlap, int)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise invalid(f"Invalid '{param}.static.max_chunk_size_tokens': {size}; it must be between {MIN_SIZE} "
                      f"and {MAX_SIZE}.", f"{param}.static.max_chunk_size_tokens")
    if overlap < 0 or overlap > size // 2:
        raise invalid(f"Invalid '{param}.static.chunk_overlap_tokens': {overlap}; it must be between 0 and half "
                      f"of max_chunk_size_tokens ({size // 2}).", f"{param}.static.chunk_overlap_tokens")
    return static(size, overlap)


def chunk(text: str, strategy: Strategy) -> list[str]:
    """``text`` as windows of at most ``max_chunk_size_tokens`` tokens, each
    starting ``max - overlap`` tokens after the previous one (CPU work: run
    it off the event loop for big texts). Whitespace-only windows are dropped."""
    size = strategy["static"]["max_chunk_size_tokens"]
    step = size - strategy["static"]["chunk_overlap_tokens"]
    enc = encoding("cl100k_base")
    if enc is None:
        size, step = size * CHARS_PER_TOKEN, step * CHARS_PER_TOKEN
        pieces = [text[i:i + size] for i in _starts(len(text), size, step)]
    else:
        tokens = enc.encode(text, disallowed_special=())
        # Whole UTF-8 characters only: a window may start or end inside one.
        pieces = [enc.decode_bytes(tokens[i:i + size]).decode("utf-8", "ignore")
                  for i in _starts(len(tokens), size, step)]
    return [p for p in pieces if p.strip()]


def _starts(length: int, size: int, step: int) -> range:
    """Window starts: the last window ends at ``length``, none starts inside the previous one's tail only."""
    if length <= size:
        return range(0, 1 if length else 0)
    count = -(-(length - size) // step) + 1
    if count > MAX_CHUNKS_PER_FILE:
        raise invalid(f"The file's text makes {count} chunks with this chunking strategy; at most "
                      f"{MAX_CHUNKS_PER_FILE} are allowed per file.", None, "invalid_file")
    return range(0, step * count, step)
