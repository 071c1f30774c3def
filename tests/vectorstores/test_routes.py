"""``/v1/vector_stores`` over HTTP with the real ``openai`` SDK on a real
server: the store objects, cursors, updates, deletes, tenants and the 400s
of search, before any file is attached (files: test_vector_stores_api.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types import VectorStore

from tests.helpers import Serve, server_settings


@pytest.fixture(scope="module")
def url(serve_responsa: Serve, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serve_responsa(server_settings(Path(tmp_path_factory.mktemp("vsroutes")))) as base:
        yield base


def _client(url: str) -> OpenAI:
    return OpenAI(base_url=f"{url}/v1", api_key=f"k-{os.urandom(6).hex()}", max_retries=0)


def test_store_lifecycle_with_the_sdk(url: str) -> None:
    client = _client(url)
    created = client.vector_stores.create(name="notes", metadata={"team": "a"},
                                          expires_after={"anchor": "last_active_at", "days": 3})
    raw = httpx.get(f"{url}/v1/vector_stores/{created.id}", headers={"authorization": f"Bearer {client.api_key}"})
    assert set(raw.json()) <= set(VectorStore.model_fields)
    assert created.object == "vector_store" and created.status == "completed"
    assert created.file_counts.total == 0 and created.usage_bytes == 0
    assert created.expires_at == created.last_active_at + 3 * 86400  # type: ignore[operator]
    updated = client.vector_stores.update(created.id, name="renamed", expires_after=None)
    assert (updated.name, updated.metadata, updated.expires_at) == ("renamed", {"team": "a"}, None)
    more = [client.vector_stores.create(name=f"s{i}").id for i in range(3)]
    page = client.vector_stores.list(limit=2, order="asc")
    assert [s.id for s in page.data] == [created.id, more[0]] and page.has_more
    assert [s.id for s in client.vector_stores.list(order="asc", after=more[0])] == more[1:]
    empty = client.vector_stores.search(created.id, query="anything")
    assert list(empty) == []
    assert client.vector_stores.delete(created.id).deleted
    with pytest.raises(NotFoundError):
        client.vector_stores.retrieve(created.id)
    with pytest.raises(BadRequestError):
        client.vector_stores.list(after=created.id)  # deleted: the cursor names nothing any more


def test_tenants_are_apart(url: str) -> None:
    alice, bob = _client(url), _client(url)
    store = alice.vector_stores.create(name="alice")
    for call in (lambda: bob.vector_stores.retrieve(store.id), lambda: bob.vector_stores.delete(store.id),
                 lambda: bob.vector_stores.search(store.id, query="x"),
                 lambda: bob.vector_stores.update(store.id, name="mine")):
        with pytest.raises(NotFoundError):
            call()
    assert [s.id for s in bob.vector_stores.list()] == []
    assert alice.vector_stores.retrieve(store.id).name == "alice"


@pytest.mark.parametrize(("body", "param"), [
    ({"query": "x", "rewrite_query": True}, "rewrite_query"),
    ({"query": "x", "max_num_results": 0}, "max_num_results"),
    ({"query": "x", "max_num_results": 51}, "max_num_results"),
    ({"query": ""}, "query"),
    ({"query": ["a"] * 11}, "query"),
    ({"query": "x", "filters": {"type": "regex", "key": "a", "value": "b"}}, "filters.type"),
    ({"query": "x", "ranking_options": {"ranker": "fancy"}}, "ranking_options.ranker"),
    ({"query": "x", "colour": "red"}, "colour"),
    ({}, "query"),
])
def test_bad_searches_are_400s_naming_the_parameter(url: str, body: dict[str, Any], param: str) -> None:
    client = _client(url)
    store = client.vector_stores.create(name="empty")
    r = httpx.post(f"{url}/v1/vector_stores/{store.id}/search", json=body,
                   headers={"authorization": f"Bearer {client.api_key}"}, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(("body", "param"), [
    ({"chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}}},
     "chunking_strategy.static.max_chunk_size_tokens"),
    ({"expires_after": {"anchor": "created_at", "days": 1}}, "expires_after.anchor"),
    ({"expires_after": {"anchor": "last_active_at", "days": 366}}, "expires_after.days"),
    ({"metadata": {"k": 1}}, "metadata.k"),
    ({"file_ids": "file-1"}, "file_ids"),
    ({"unknown": 1}, "unknown"),
])
def test_bad_creates_are_400s_naming_the_parameter(url: str, body: dict[str, Any], param: str) -> None:
    r = httpx.post(f"{url}/v1/vector_stores", json=body, headers={"authorization": "Bearer k-bad"}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
