"""``POST /v1/embeddings`` request validation (``protocol.embeddings.parse``)
and the response shape, without a server: every input form OpenAI accepts,
and a 400 naming the parameter for everything it rejects."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest
from openai.types import CreateEmbeddingResponse

from responsa.protocol import embeddings as P
from responsa.protocol.errors import ResponsaError


@pytest.mark.parametrize(("given", "inputs"), [
    ("hello", ["hello"]),
    (["a", "b"], ["a", "b"]),
    ([1, 2, 3], [[1, 2, 3]]),
    ([[1, 2], [3]], [[1, 2], [3]]),
])
def test_every_input_form(given: Any, inputs: list[Any]) -> None:
    req = P.parse({"model": "m", "input": given})
    assert req.inputs == inputs and req.encoding_format == "float" and req.dimensions is None


def test_optional_parameters() -> None:
    req = P.parse({"model": "m", "input": "x", "encoding_format": "base64", "dimensions": 8, "user": "u-1"})
    assert (req.encoding_format, req.dimensions, req.user) == ("base64", 8, "u-1")
    assert P.parse({"model": "m", "input": "x", "encoding_format": None}).encoding_format == "float"


@pytest.mark.parametrize(("body", "param", "words"), [
    ({"input": "x"}, "model", "Missing required parameter"),
    ({"model": "m"}, "input", "Missing required parameter"),
    ({"model": "m", "input": ""}, "input[0]", "empty string"),
    ({"model": "m", "input": ["ok", ""]}, "input[1]", "empty string"),
    ({"model": "m", "input": []}, "input", "must not be empty"),
    ({"model": "m", "input": [[]]}, "input[0]", "empty token array"),
    ({"model": "m", "input": [[1, -2]]}, "input[0]", "non-negative"),
    ({"model": "m", "input": ["a", 1]}, "input", "not a mix"),
    ({"model": "m", "input": {"text": "x"}}, "input", "expected a string"),
    ({"model": "m", "input": [True]}, "input", "expected a string"),
    ({"model": "m", "input": ["x"] * (P.MAX_INPUTS + 1)}, "input", "at most 2048"),
    ({"model": 3, "input": "x"}, "model", "Invalid type"),
    ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format", "'float' and 'base64'"),
    ({"model": "m", "input": "x", "dimensions": 0}, "dimensions", "positive integer"),
    ({"model": "m", "input": "x", "dimensions": "8"}, "dimensions", "positive integer"),
    ({"model": "m", "input": "x", "user": 5}, "user", "Invalid type"),
    ({"model": "m", "input": "x", "temperature": 1}, "temperature", "Unknown parameter"),
])
def test_rejected_with_the_parameter_named(body: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(ResponsaError) as caught:
        P.parse(body)
    assert caught.value.status == 400 and caught.value.param == param and words in caught.value.message


def test_response_float_and_base64_are_the_same_float32_vectors() -> None:
    vectors = np.array([[0.1, -0.25, 0.5], [1.0, 0.0, -1e-7]], dtype=np.float32)
    result = P.Embedded(vectors=vectors, prompt_tokens=7)
    for fmt in ("float", "base64"):
        req = P.parse({"model": "m", "input": ["a", "b"], "encoding_format": fmt})
        body = orjson.loads(orjson.dumps(P.response(req, "local/x", result), option=orjson.OPT_SERIALIZE_NUMPY))
        assert body["model"] == "local/x" and body["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
        assert [d["index"] for d in body["data"]] == [0, 1]
        rows = [np.array(d["embedding"], dtype=np.float32) if fmt == "float"
                else np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in body["data"]]
        assert np.array_equal(np.stack(rows), vectors)
        # The SDK's type holds floats: base64 is what its parser decodes into them.
        CreateEmbeddingResponse.model_validate({**body, "data": [{**d, "embedding": r.tolist()}
                                                                 for d, r in zip(body["data"], rows, strict=True)]})
