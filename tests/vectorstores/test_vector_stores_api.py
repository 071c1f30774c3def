"""``/v1/vector_stores`` end to end with the real ``openai`` SDK, on a
server over SQLite and one over PostgreSQL, with the real Files API and
the real local embedding model: upload (text, markdown, a PDF), attach and
poll, batches, search with filters and ranking options, attributes,
content, deletes, tenants, every refusal, and ingestion surviving a killed
server."""

from __future__ import annotations

import os
import signal
from typing import Any

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types import VectorStore, VectorStoreSearchResponse
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch

from tests.files.pdfs import pdf_bytes
from tests.helpers import server_process, wait_until

DOCS = {
    "rockets.txt": b"Rockets burn liquid hydrogen and liquid oxygen. The exhaust leaves the nozzle faster than "
                   b"sound, and the reaction pushes the rocket into orbit around the Earth.",
    "bread.md": b"# Sourdough\n\nBread rises because yeast ferments the flour's sugars into carbon dioxide. "
                b"A sourdough starter keeps wild yeast and lactic bacteria alive between bakes.",
    "tea.txt": b"Green tea and black tea are leaves of the same plant, Camellia sinensis; black tea is "
               b"oxidised before it is dried, green tea is not.",
}
PDF = pdf_bytes(["Volcanoes erupt when magma rises through the crust.",
                 "Basalt lava flows are runny; andesite lava is thick and explosive."])


def _client(url: str, key: str | None = None) -> OpenAI:
    return OpenAI(base_url=f"{url}/v1", api_key=key or f"k-{os.urandom(6).hex()}", max_retries=0)


def _check(model: type[Any], obj: Any) -> None:
    """What the server sent has exactly the SDK model's fields (no extras, none missing)."""
    raw = obj.model_dump() if hasattr(obj, "model_dump") else obj
    assert set(raw) <= set(model.model_fields), set(raw) - set(model.model_fields)
    model.model_validate(raw)


def _upload(client: OpenAI) -> dict[str, str]:
    ids = {name: client.files.create(file=(name, data), purpose="assistants").id for name, data in DOCS.items()}
    ids["volcano.pdf"] = client.files.create(file=("volcano.pdf", PDF), purpose="assistants").id
    return ids


def test_create_poll_search_update_delete(vs_server: str) -> None:
    client = _client(vs_server)
    ids = _upload(client)
    store = client.vector_stores.create(name="science", metadata={"team": "a"},
                                        expires_after={"anchor": "last_active_at", "days": 7})
    _check(VectorStore, store)
    assert store.status == "completed" and store.file_counts.total == 0 and store.expires_at is not None

    first = client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=ids["rockets.txt"],
                                                       attributes={"topic": "space", "year": 2023})
    _check(VectorStoreFile, first)
    assert first.status == "completed" and first.last_error is None and first.usage_bytes > 0
    assert first.chunking_strategy is not None and first.chunking_strategy.type == "static"
    assert first.chunking_strategy.static.max_chunk_size_tokens == 800  # type: ignore[union-attr]

    batch = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id, files=[
        {"file_id": ids["bread.md"], "attributes": {"topic": "food", "year": 2021}},
        {"file_id": ids["tea.txt"], "attributes": {"topic": "food", "year": 2024}},
        {"file_id": ids["volcano.pdf"], "attributes": {"topic": "earth", "year": 2020}}])
    _check(VectorStoreFileBatch, batch)
    assert batch.status == "completed" and batch.file_counts.completed == 3
    listed = client.vector_stores.file_batches.list_files(vector_store_id=store.id, batch_id=batch.id)
    assert {f.id for f in listed} == {ids["bread.md"], ids["tea.txt"], ids["volcano.pdf"]}

    got = client.vector_stores.retrieve(store.id)
    assert got.file_counts.completed == 4 and got.usage_bytes > 0 and got.status == "completed"

    hits = client.vector_stores.search(store.id, query="how does yeast make bread rise?")
    top = next(iter(hits))
    _check(VectorStoreSearchResponse, top)
    assert top.filename == "bread.md" and top.attributes == {"topic": "food", "year": 2021}
    assert "yeast" in top.content[0].text and 0 < top.score <= 1
    pdf_hit = next(iter(client.vector_stores.search(store.id, query="magma basalt lava")))
    assert pdf_hit.filename == "volcano.pdf"  # the PDF's text was extracted and indexed

    food = client.vector_stores.search(store.id, query="plants and leaves", max_num_results=10,
                                       filters={"type": "and", "filters": [
                                           {"type": "eq", "key": "topic", "value": "food"},
                                           {"type": "gt", "key": "year", "value": 2022}]})
    assert {h.filename for h in food} == {"tea.txt"}
    space = client.vector_stores.search(store.id, query=["rocket exhaust", "orbit"],
                                        filters={"type": "in", "key": "topic", "value": ["space", "earth"]},
                                        ranking_options={"ranker": "auto", "score_threshold": 0.0})
    assert next(iter(space)).filename == "rockets.txt"

    updated = client.vector_stores.files.update(file_id=ids["tea.txt"], vector_store_id=store.id,
                                                attributes={"topic": "space"})
    assert updated.attributes == {"topic": "space"}
    space = client.vector_stores.search(store.id, query="tea", filters={"type": "eq", "key": "topic",
                                                                        "value": "space"})
    assert {h.filename for h in space} <= {"tea.txt", "rockets.txt"} and "tea.txt" in {h.filename for h in space}

    content = list(client.vector_stores.files.content(file_id=ids["bread.md"], vector_store_id=store.id))
    assert "".join(c.text or "" for c in content).startswith("# Sourdough")

    files = client.vector_stores.files.list(vector_store_id=store.id, limit=2, order="asc")
    assert len(files.data) == 2 and files.has_more
    assert len(list(client.vector_stores.files.list(vector_store_id=store.id, filter="completed"))) == 4

    deleted = client.vector_stores.files.delete(file_id=ids["rockets.txt"], vector_store_id=store.id)
    assert deleted.deleted and deleted.object == "vector_store.file.deleted"
    after = client.vector_stores.search(store.id, query="rocket hydrogen orbit")
    assert "rockets.txt" not in {h.filename for h in after}

    renamed = client.vector_stores.update(store.id, name="renamed", metadata={"team": "b"})
    assert (renamed.name, renamed.metadata) == ("renamed", {"team": "b"})
    assert store.id in {s.id for s in client.vector_stores.list()}
    gone = client.vector_stores.delete(store.id)
    assert gone.deleted and gone.object == "vector_store.deleted"
    with pytest.raises(NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_upload_and_poll_and_create_with_file_ids(vs_server: str) -> None:
    client = _client(vs_server)
    store = client.vector_stores.create(name="uploads")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id, files=[(n, d) for n, d in DOCS.items()],
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20}})
    assert batch.status == "completed" and batch.file_counts.completed == len(DOCS)
    ids = _upload(client)
    created = client.vector_stores.create(name="at once", file_ids=list(ids.values()))
    wait_until(lambda: client.vector_stores.retrieve(created.id).file_counts.completed == len(ids), 60,
               what="the files given at creation to be ingested")
    assert next(iter(client.vector_stores.search(created.id, query="oxidised leaves"))).filename == "tea.txt"


def test_tenants_never_see_each_others_stores(vs_server: str) -> None:
    alice, bob = _client(vs_server), _client(vs_server)
    ids = _upload(alice)
    store = alice.vector_stores.create(name="alice's")
    alice.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=ids["tea.txt"])
    for call in (lambda: bob.vector_stores.retrieve(store.id),
                 lambda: bob.vector_stores.search(store.id, query="tea"),
                 lambda: bob.vector_stores.files.retrieve(file_id=ids["tea.txt"], vector_store_id=store.id),
                 lambda: bob.vector_stores.delete(store.id)):
        with pytest.raises(NotFoundError):
            call()
    bobs = bob.vector_stores.create(name="bob's")
    with pytest.raises(NotFoundError):  # alice's file is not bob's to attach
        bob.vector_stores.files.create(vector_store_id=bobs.id, file_id=ids["tea.txt"])
    assert store.id not in {s.id for s in bob.vector_stores.list()}
    assert alice.vector_stores.retrieve(store.id).file_counts.completed == 1


@pytest.mark.parametrize(("body", "param"), [
    ({"query": "x", "rewrite_query": True}, "rewrite_query"),
    ({"query": "x", "max_num_results": 0}, "max_num_results"),
    ({"query": "x", "max_num_results": 51}, "max_num_results"),
    ({"query": ""}, "query"),
    ({"query": "x", "filters": {"type": "regex", "key": "a", "value": "b"}}, "filters.type"),
    ({"query": "x", "ranking_options": {"ranker": "fancy"}}, "ranking_options.ranker"),
    ({"query": "x", "colour": "red"}, "colour"),
    ({}, "query"),
])
def test_bad_searches_are_400s(vs_server: str, body: dict[str, Any], param: str) -> None:
    client = _client(vs_server)
    store = client.vector_stores.create(name="empty")
    r = httpx.post(f"{vs_server}/v1/vector_stores/{store.id}/search", json=body,
                   headers={"authorization": f"Bearer {client.api_key}"}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"


def test_bad_creates_are_400s(vs_server: str) -> None:
    client = _client(vs_server)
    with pytest.raises(BadRequestError) as err:
        client.vector_stores.create(name="x", chunking_strategy={
            "type": "static", "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}})
    assert err.value.body["param"] == "chunking_strategy.static.max_chunk_size_tokens"  # type: ignore[index]
    with pytest.raises(BadRequestError):
        client.vector_stores.create(expires_after={"anchor": "created_at", "days": 1})  # type: ignore[typeddict-item]
    with pytest.raises(NotFoundError):
        client.vector_stores.create(file_ids=["file-doesnotexist"])
    store = client.vector_stores.create()
    with pytest.raises(BadRequestError):
        client.vector_stores.files.create(vector_store_id=store.id, file_id="file-x", attributes={"k": [1]})  # type: ignore[dict-item]
    with pytest.raises(BadRequestError) as err:
        client.vector_stores.list(after="vs_nope")
    assert err.value.body["param"] == "after"  # type: ignore[index]


def _status(url: str, key: str, vid: str, fid: str) -> str:
    r = httpx.get(f"{url}/v1/vector_stores/{vid}/files/{fid}", headers={"authorization": f"Bearer {key}"}, timeout=10)
    status: str = r.json()["status"]
    return status


@pytest.mark.timeout(600)
@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_ingestion_survives_a_killed_server(db_url: str) -> None:
    """kill -9 while a file is being ingested, restart on the same database:
    the new server takes the job over once its lease runs out and completes
    it; nothing is left in_progress."""
    key = "k-restart"
    env = {"RESPONSA_BACKGROUND_LEASE_S": "2"}
    text = " ".join(f"Paragraph {i} talks about topic number {i} and its many details." for i in range(400))
    with server_process(db_url, env=env) as (proc, url):
        client = _client(url, key)
        fid = client.files.create(file=("long.txt", text.encode()), purpose="assistants").id
        store = client.vector_stores.create(name="long")
        client.vector_stores.files.create(vector_store_id=store.id, file_id=fid, chunking_strategy={
            "type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}})
        assert _status(url, key, store.id, fid) == "in_progress"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with server_process(db_url, env=env) as (_, url):
        assert _status(url, key, store.id, fid) == "in_progress"  # the dead server's job, still leased
        wait_until(lambda: _status(url, key, store.id, fid) != "in_progress", 240,
                   what="the restarted server to finish the job")
        client = _client(url, key)
        assert _status(url, key, store.id, fid) == "completed"
        hits = list(client.vector_stores.search(store.id, query="topic number 321"))
        assert any("321" in h.content[0].text for h in hits)
