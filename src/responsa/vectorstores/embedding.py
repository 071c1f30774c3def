"""Chunk vectors that cover the whole chunk.

OpenAI's default chunks are 800 tokens, and a small local embedding model
reads far fewer (``all-MiniLM-L6-v2``: 256 of its own tokens) and silently
truncates the rest. So a chunk longer than the model's window is cut into
pieces that fit (by ``cl100k_base`` tokens, with a margin for the model's
own tokenizer), every piece is embedded, and the chunk's vector is the
normalised mean of its pieces' vectors: every sentence of the chunk counts
towards its vector, as every word counts in its keyword index. A chunk
that fits is embedded as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from responsa.tokenizer import encoding
from responsa.vectorstores.base import Embedder

BATCH = 64
"""Texts per embedding call."""
WINDOW_SHARE = 0.7
"""Of the model's window, in ``cl100k_base`` tokens: WordPiece-style
tokenizers cut English into more tokens than cl100k (about 1.2-1.3x)."""


def pieces(text: str, window: int | None) -> list[str]:
    """``text`` as pieces that each fit a model window of ``window`` tokens."""
    enc = encoding("cl100k_base")
    if not window or enc is None:
        return [text]
    size = max(16, int(window * WINDOW_SHARE))
    tokens = enc.encode(text, disallowed_special=())
    if len(tokens) <= size:
        return [text]
    return [enc.decode_bytes(tokens[i:i + size]).decode("utf-8", "ignore") for i in range(0, len(tokens), size)]


async def embed_chunks(embedder: Embedder, texts: Sequence[str]) -> list[list[float]]:
    """One vector per chunk, each covering its whole text (see the module docstring)."""
    window = getattr(embedder, "max_input_tokens", None)
    window = window if isinstance(window, int) else None
    owners: list[int] = []
    flat: list[str] = []
    for n, text in enumerate(texts):
        parts = pieces(text, window)
        flat += parts
        owners += [n] * len(parts)
    vectors: list[list[float]] = []
    for i in range(0, len(flat), BATCH):
        vectors += await embedder.embed(flat[i:i + BATCH])
    if len(flat) == len(texts):
        return vectors
    sums: list[list[float] | None] = [None] * len(texts)
    for owner, vector in zip(owners, vectors, strict=True):
        acc = sums[owner]
        sums[owner] = list(vector) if acc is None else [a + b for a, b in zip(acc, vector, strict=True)]
    out = []
    for acc in sums:
        assert acc is not None
        norm = math.sqrt(sum(x * x for x in acc)) or 1.0
        out.append([x / norm for x in acc])
    return out
