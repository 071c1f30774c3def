"""``file_search`` end to end with the real ``openai`` SDK, on SQLite and
PostgreSQL: upload files (one a PDF), make a vector store of them, poll it
until its files are ingested, search it, and answer with the
``file_search`` tool on the test model, the chat-completions fake and the
embedded model ``local/smollm2``. Every object and event is validated
against the SDK's types and the Open Responses spec."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import NotFoundError, OpenAI

from responsa.config import ProviderConfig
from tests.fakes.openai_chat import FakeChat
from tests.files.pdfs import pdf_bytes
from tests.helpers import Serve, parse_sse, server_settings, wait_until
from tests.store.backends import admin, in_own_loop, new_schema_name, reachable_postgres, with_search_path
from tests.tools.sdk_types import check_response, check_stream

Json = dict[str, Any]
DOCS: dict[str, bytes] = {
    "ferrets.md": b"# Ferret care\n\nFerrets sleep fourteen to eighteen hours a day, mostly in dark hammocks. "
                  b"Feed them meat-based kibble twice a day.",
    "volcanoes.txt": b"Shield volcanoes such as Mauna Loa erupt basaltic lava that flows far before it cools. "
                     b"Stratovolcanoes are steep and explosive.",
    "handbook.pdf": pdf_bytes(["Employee handbook", "Holiday allowance is twenty-seven days a year, "
                               "plus public holidays."]),
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def base_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             chat_fake_server: tuple[FakeChat, str], serve_responsa: Serve) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fs")
    schema = None
    if request.param == "sqlite":
        settings = server_settings(tmp)
    else:
        pg, errors = in_own_loop(reachable_postgres)
        if pg is None:
            pytest.skip("PostgreSQL not reachable: " + "; ".join(errors))
        schema = new_schema_name()
        asyncio.run(admin(pg, f'CREATE SCHEMA "{schema}"'))
        settings = server_settings(tmp, database_url=with_search_path(pg, schema))
    settings.providers["chat"] = ProviderConfig(name="chat", kind="chat-completions", base_url=chat_fake_server[1],
                                                api_key_env="PATH", options={"max_retries": 0})
    try:
        with serve_responsa(settings) as url:
            yield url
    finally:
        if schema is not None:
            asyncio.run(admin(pg, f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(scope="module")
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key="fs-tenant", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def library(client: OpenAI) -> tuple[str, dict[str, str]]:
    """A vector store holding DOCS, ingested: (its id, filename -> file id)."""
    ids = {name: client.files.create(file=(name, data), purpose="assistants").id for name, data in DOCS.items()}
    store = client.vector_stores.create(name="library", file_ids=list(ids.values()))
    assert store.status in ("in_progress", "completed")
    done = wait_until(lambda: (s := client.vector_stores.retrieve(store.id)).file_counts.in_progress == 0 and s,
                      timeout=120, what="the vector store's files to be ingested")
    assert done.file_counts.completed == len(DOCS) and done.status == "completed", done
    files = client.vector_stores.files.list(store.id)
    assert {f.id for f in files.data} == set(ids.values()) and all(f.status == "completed" for f in files.data)
    return store.id, ids


def test_search_finds_the_file_that_answers(client: OpenAI, library: tuple[str, dict[str, str]]) -> None:
    store_id, ids = library
    for query, expected in (("how long do ferrets sleep", "ferrets.md"), ("holiday allowance days", "handbook.pdf"),
                            ("basaltic lava eruption", "volcanoes.txt")):
        page = client.vector_stores.search(store_id, query=query, max_num_results=3)
        assert page.data[0].filename == expected and page.data[0].file_id == ids[expected], (query, page.data)
        assert 0 < page.data[0].score <= 1 and page.data[0].content[0].text


def _create(http: httpx.Client, body: Json) -> tuple[Json, list[Json]]:
    r = http.post("/v1/responses", json={**body, "stream": True})
    assert r.status_code == 200, r.text
    events, done = parse_sse(r.content)
    assert done
    check_stream(events)
    final: Json = events[-1]["response"]
    check_response(final)
    return final, events


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, headers={"authorization": "Bearer fs-tenant"}, timeout=120) as c:
        yield c


def _text(resp: Json) -> Json:
    msg = next(it for it in resp["output"] if it["type"] == "message")
    part: Json = msg["content"][0]
    return part


@pytest.mark.parametrize("model", ["test/echo", "chat/fake-model"])
def test_file_search_answers_from_the_files_and_cites_them(http: httpx.Client, client: OpenAI, model: str,
                                                           library: tuple[str, dict[str, str]]) -> None:
    store_id, ids = library
    args = json.dumps({"query": "how long do ferrets sleep"})
    prompt = f"[[call:file_search {args}]]" if model.startswith("test/") else f"call-with:file_search {args}"
    tool = {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 2}
    resp, events = _create(http, {"model": model, "input": prompt, "tools": [tool],
                                  "include": ["file_search_call.results"]})
    assert resp["status"] == "completed"
    call = resp["output"][0]
    assert call["type"] == "file_search_call" and call["status"] == "completed"
    assert call["queries"] == ["how long do ferrets sleep"]
    assert len(call["results"]) == 2 and call["results"][0]["filename"] == "ferrets.md"
    assert call["results"][0]["file_id"] == ids["ferrets.md"] and "fourteen" in call["results"][0]["text"]
    kinds = [e["type"] for e in events if e.get("item_id") == call["id"]]
    assert kinds == ["response.file_search_call.in_progress", "response.file_search_call.searching",
                     "response.file_search_call.completed"]
    part = _text(resp)
    assert "fourteen to eighteen hours" in part["text"]  # the model was given the excerpt
    cited = {a["file_id"]: a for a in part["annotations"] if a["type"] == "file_citation"}
    assert ids["ferrets.md"] in cited
    ferret = cited[ids["ferrets.md"]]
    assert ferret["filename"] == "ferrets.md" and part["text"][:ferret["index"]].endswith("ferrets.md]")
    # Results are stored, shown only on request; the SDK parses the stored response.
    plain = client.responses.retrieve(resp["id"])
    assert plain.output[0].type == "file_search_call" and plain.output[0].results is None
    shown = client.responses.retrieve(resp["id"], include=["file_search_call.results"])
    assert shown.output[0].results and shown.output[0].results[0].filename == "ferrets.md"  # type: ignore[union-attr]


def test_results_are_null_unless_included_and_later_turns_see_them(
        http: httpx.Client, chat_fake_server: tuple[FakeChat, str], library: tuple[str, dict[str, str]]) -> None:
    store_id, _ = library
    tool = {"type": "file_search", "vector_store_ids": [store_id]}
    args = json.dumps({"query": "holiday allowance"})
    first, events = _create(http, {"model": "test/echo", "input": f"[[call:file_search {args}]]", "tools": [tool]})
    assert first["output"][0]["results"] is None
    assert all(e["item"].get("results") is None for e in events if e.get("item", {}).get("type") == "file_search_call")
    # The store kept them: the next turn (another provider, no tool) is shown what the search found.
    _create(http, {"model": "chat/fake-model", "input": "thanks", "previous_response_id": first["id"]})
    tool_messages = [m for m in chat_fake_server[0].last["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1 and "twenty-seven days" in tool_messages[0]["content"]


def test_filters_and_unknown_stores(http: httpx.Client, library: tuple[str, dict[str, str]]) -> None:
    store_id, _ = library
    bad = http.post("/v1/responses", json={"model": "test/echo", "input": "x",
                                           "tools": [{"type": "file_search", "vector_store_ids": ["vs_nope"]}]})
    assert bad.status_code == 404 and bad.json()["error"]["param"] == "tools[0].vector_store_ids[0]"
    wrong = http.post("/v1/responses", json={"model": "test/echo", "input": "x", "tools": [
        {"type": "file_search", "vector_store_ids": [store_id], "filters": {"type": "eq", "key": "k"}}]})
    assert wrong.status_code == 400 and wrong.json()["error"]["param"].startswith("tools[0].filters")


def test_another_tenant_cannot_search_the_store(base_url: str, library: tuple[str, dict[str, str]]) -> None:
    other = OpenAI(base_url=f"{base_url}/v1", api_key="someone-else", max_retries=0)
    with pytest.raises(NotFoundError):
        other.vector_stores.search(library[0], query="ferrets")


def test_file_search_on_the_embedded_model(client: OpenAI, library: tuple[str, dict[str, str]]) -> None:
    """SmolLM2-135M does not call tools well by itself: ``tool_choice`` forces
    the search (the local provider's grammar guarantees the call's shape; its
    query is the model's own, however weak), and ``max_tool_calls`` 1 takes
    the tool away once it ran, so the model answers from the excerpt."""
    store_id, ids = library
    raw = client.responses.with_raw_response.create(
        model="local/smollm2", input="How many days of holiday do employees get?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 1}],
        tool_choice={"type": "file_search"}, max_tool_calls=1, temperature=0,
        max_output_tokens=160, include=["file_search_call.results"])
    check_response(raw.http_response.json())
    resp = raw.parse()
    assert resp.status == "completed", resp.incomplete_details
    assert [it.type for it in resp.output] == ["file_search_call", "message"]
    call = resp.output[0]
    assert call.type == "file_search_call" and call.status == "completed" and call.queries and call.queries[0]
    assert call.results and len(call.results) == 1 and call.results[0].file_id in ids.values()
    assert call.results[0].text and call.results[0].filename in DOCS
    message = resp.output[1]
    assert message.type == "message" and message.content[0].type == "output_text" and message.content[0].text
    cited = {a.file_id for a in message.content[0].annotations if a.type == "file_citation"}
    assert cited and cited <= set(ids.values())
