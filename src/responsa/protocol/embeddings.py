"""``POST /v1/embeddings`` on the wire: the request as OpenAI defines it,
validated into an ``EmbeddingRequest``, and the ``list`` of ``embedding``
objects it answers with.

The rules that hold whatever model serves the request live here, with
OpenAI's wording where it has one: ``input`` is a string, an array of
strings, an array of token ids or an array of such arrays; never empty, no
empty string, at most ``MAX_INPUTS`` entries; ``encoding_format`` is
``float`` or ``base64`` (little-endian float32, what the ``openai`` SDK asks
for by default and decodes); ``dimensions`` a positive integer. Limits that
depend on the model (tokens per input, whether ``dimensions`` can shrink a
vector) are the embedder's to check.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from responsa.protocol.errors import invalid

if TYPE_CHECKING:  # numpy is imported by the embedders when they run, not by a server starting
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]
    """One row per input, float32 (what ``base64`` encodes and what a vector store keeps)."""

MAX_INPUTS = 2048
"""Inputs per request (OpenAI's limit)."""
MAX_REQUEST_TOKENS = 300_000
"""Tokens summed over a request's inputs (OpenAI's limit)."""
_KEYS = frozenset({"input", "model", "encoding_format", "dimensions", "user"})



@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str
    inputs: list[str] | list[list[int]]
    """Texts, or token id arrays (OpenAI's ``cl100k_base`` ids)."""
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Embedded:
    """What an embedder returns: the vectors in input order and the tokens it counted."""

    vectors: Vectors
    prompt_tokens: int


def _type_error(param: str, expected: str, value: Any) -> Exception:
    got = "null" if value is None else type(value).__name__
    return invalid(f"Invalid type for '{param}': expected {expected}, but got {got}.", param, "invalid_type")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _inputs(value: Any) -> list[str] | list[list[int]]:
    expected = "a string, an array of strings, an array of integers or an array of integer arrays"
    if isinstance(value, str):
        value = [value]
    elif not isinstance(value, list):
        raise _type_error("input", expected, value)
    elif value and all(_is_int(v) for v in value):
        value = [value]
    if not value:
        raise invalid("'input' must not be empty.", "input")
    if len(value) > MAX_INPUTS:
        raise invalid(f"'input' has {len(value)} entries: at most {MAX_INPUTS} inputs per request.", "input",
                      "array_above_max_length")
    if all(isinstance(v, str) for v in value):
        texts: list[str] = value
        for i, text in enumerate(texts):
            if not text:
                raise invalid(f"'input[{i}]' is an empty string: every input must contain text.", f"input[{i}]")
        return texts
    if all(isinstance(v, list) for v in value):
        arrays: list[list[int]] = value
        for i, ids in enumerate(arrays):
            if not ids:
                raise invalid(f"'input[{i}]' is an empty token array.", f"input[{i}]")
            if not all(_is_int(t) and t >= 0 for t in ids):
                raise invalid(f"'input[{i}]' must be an array of non-negative integer token ids.", f"input[{i}]",
                              "invalid_type")
        return arrays
    raise _type_error("input", expected + " (not a mix)", value)


def parse(body: Any) -> EmbeddingRequest:
    """A request body as OpenAI's ``embeddings.create`` sends it; a 400 naming the parameter otherwise."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_type")
    for key in body:
        if key not in _KEYS:
            raise invalid(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    if "model" not in body:
        raise invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if "input" not in body:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    model = body["model"]
    if not isinstance(model, str) or not model:
        raise _type_error("model", "a non-empty string", model)
    fmt: Literal["float", "base64"] = "float"
    given = body.get("encoding_format")
    if given == "base64":
        fmt = "base64"
    elif given not in (None, "float"):
        raise invalid(f"Invalid value for 'encoding_format': {given!r}. Supported values are: 'float' and 'base64'.",
                      "encoding_format")
    dims = body.get("dimensions")
    if dims is not None and (not _is_int(dims) or dims < 1):
        raise invalid(f"Invalid value for 'dimensions': {dims!r}; expected a positive integer.", "dimensions")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _type_error("user", "a string", user)
    return EmbeddingRequest(model=model, inputs=_inputs(body["input"]), encoding_format=fmt, dimensions=dims,
                            user=user)


def _encode(row: Vectors, fmt: str) -> Any:
    # orjson writes a float32 array with float32's shortest repr (-0.0686128),
    # not the 17 digits of its float64 widening.
    return base64.b64encode(row.astype("<f4", copy=False).tobytes()).decode() if fmt == "base64" else row


def response(req: EmbeddingRequest, model: str, result: Embedded) -> dict[str, Any]:
    """The ``list`` object; dump it with ``orjson.OPT_SERIALIZE_NUMPY`` (``float`` rows are arrays)."""
    data = [{"object": "embedding", "index": i, "embedding": _encode(row, req.encoding_format)}
            for i, row in enumerate(result.vectors)]
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}}
