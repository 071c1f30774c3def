"""The ``Embedder`` API that vector stores and ``file_search`` call
directly (``responsa.embeddings``): lookup by name, ``embed`` (truncating
where the HTTP door refuses), token counts for chunk sizing, and an
upstream embedder over a fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest

from responsa.config import ProviderConfig, Settings
from responsa.embeddings import DEFAULT_EMBEDDING_MODEL, Embedder, available, lookup
from responsa.embeddings.local import MAX_TOKENS
from responsa.protocol.errors import ResponsaError
from responsa.providers.registry import Registry
from tests.fakes.embeddings import vector_of
from tests.fakes.openai_chat import FakeChat
from tests.helpers import serve_in_thread


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    with serve_in_thread(FakeChat().app) as url:
        yield f"{url}/v1"


@pytest.fixture
async def registry(fake_url: str) -> AsyncIterator[Registry]:
    providers = {"local": ProviderConfig(name="local", kind="local"),
                 "up": ProviderConfig(name="up", kind="chat-completions", base_url=fake_url),
                 "claude": ProviderConfig(name="claude", kind="anthropic", base_url="http://127.0.0.1:9")}
    reg = Registry(Settings(providers=providers))
    yield reg
    await reg.aclose()


@pytest.fixture
def minilm(registry: Registry) -> Embedder:
    return lookup(registry, DEFAULT_EMBEDDING_MODEL)


async def test_embed_is_order_kept_unit_vectors(minilm: Embedder) -> None:
    assert (minilm.model, minilm.dimensions, minilm.max_input_tokens) == ("local/all-minilm-l6-v2", 384, 256)
    texts = ["cats purr", "kittens meow", "interest rates rose", "cats purr"]
    vectors = np.array(await minilm.embed(texts))
    assert vectors.shape == (4, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors[0], vectors[3], atol=1e-6)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert await minilm.embed([]) == []


async def test_embed_truncates_what_the_door_refuses(minilm: Embedder) -> None:
    """Past 256 tokens only the start counts, as in sentence-transformers:
    a long text embeds as its first 254 words (plus [CLS]/[SEP]) do."""
    words = [f"w{i % 7}" if i < 254 else "zebra" for i in range(400)]
    assert minilm.count_tokens([" ".join(words[:254])]) == [254 * 2 + 2]  # w0 -> 'w', '##0'
    head = " ".join(["cat"] * 254)
    assert minilm.count_tokens([head, "cat " * 400]) == [MAX_TOKENS, 402]
    long, short = np.array(await minilm.embed(["cat " * 400, head]))
    assert np.allclose(long, short, atol=1e-5)


async def test_upstream_embedder(registry: Registry) -> None:
    up = lookup(registry, "up/fake-embedding")
    assert up.model == "up/fake-embedding" and up.dimensions is None and up.max_input_tokens is None
    vectors = await up.embed(["alpha", "beta"])
    assert np.allclose(vectors, [vector_of("alpha"), vector_of("beta")]) and up.dimensions == 12
    assert up.count_tokens(["hello world"]) == [2]  # cl100k_base


def test_lookup_errors_list_the_embedding_models(registry: Registry) -> None:
    assert available(registry) == ["local/all-minilm-l6-v2", "up/*"]
    for name, status in (("local/smollm2", 404), ("unknown/x", 404), ("bare-name", 404), ("claude/x", 400)):
        with pytest.raises(ResponsaError) as caught:
            lookup(registry, name)
        assert caught.value.status == status and "local/all-minilm-l6-v2, up/*" in caught.value.message
