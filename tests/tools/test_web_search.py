"""The server-side ``web_search`` tool against a fake search backend on
loopback, for every provider family, and without any backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from responsa.api.app import create_app
from responsa.config import ProviderConfig, load_settings
from tests.fakes.search import FakeSearch
from tests.helpers import parse_sse, serve_in_thread
from tests.tools.sdk_types import check_response, check_stream

Json = dict[str, Any]
CODEX_TOOL = {"type": "web_search", "external_web_access": True, "search_content_types": ["text", "image"]}
MODELS = ["test/echo", "chat/fake-model", "native/gpt-fake", "claude/claude-sonnet-4-5"]


@pytest.fixture(scope="module")
def search() -> Iterator[tuple[FakeSearch, str]]:
    fake = FakeSearch()
    with serve_in_thread(fake.app) as url:
        yield fake, url


def _server(tmp: Any, web_search: Json, providers: dict[str, ProviderConfig]) -> Any:
    settings = load_settings(None, database_url=f"sqlite:///{tmp}/r.db", default_model="test/echo")
    settings.web_search = web_search
    settings.providers.update(providers)
    return serve_in_thread(create_app(settings), lifespan="on")


@pytest.fixture(scope="module")
def http(search: tuple[FakeSearch, str], fake_providers: dict[str, ProviderConfig],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with _server(tmp_path_factory.mktemp("ws"), {"backend": "searxng", "url": search[1], "max_results": 2},
                 fake_providers) as url, \
            httpx.Client(base_url=url, headers={"authorization": "Bearer k"}, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def offline(fake_providers: dict[str, ProviderConfig],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with _server(tmp_path_factory.mktemp("ws0"), {}, fake_providers) as url, \
            httpx.Client(base_url=url, headers={"authorization": "Bearer k"}, timeout=60) as c:
        yield c


def search_prompt(model: str, query: str) -> str:
    args = json.dumps({"query": query})
    return f"[[call:web_search {args}]] find it" if model.startswith("test/") else f"call-with:web_search {args}"


def create(http: httpx.Client, body: Json) -> tuple[Json, list[Json]]:
    r = http.post("/v1/responses", json={**body, "stream": True})
    assert r.status_code == 200, r.text
    events, _ = parse_sse(r.content)
    check_stream(events)
    final: Json = events[-1]["response"]
    check_response(final)
    return final, events


def message(resp: Json) -> Json:
    msgs = [it for it in resp["output"] if it["type"] == "message"]
    assert len(msgs) == 1, resp["output"]
    part: Json = msgs[0]["content"][0]
    return part


@pytest.mark.parametrize("model", MODELS)
def test_search_runs_server_side_and_the_answer_cites(http: httpx.Client, model: str,
                                                      search: tuple[FakeSearch, str]) -> None:
    resp, events = create(http, {"model": model, "input": search_prompt(model, "rust async"), "tools": [CODEX_TOOL]})
    assert resp["status"] == "completed"
    call = resp["output"][0]
    assert call["type"] == "web_search_call" and call["status"] == "completed"
    assert call["action"]["query"] == "rust async" and "sources" not in call["action"]
    kinds = [e["type"] for e in events if e.get("item_id") == call["id"]]
    assert kinds == ["response.web_search_call.in_progress", "response.web_search_call.searching",
                     "response.web_search_call.completed"]
    part = message(resp)
    assert "https://docs.example.com/rust-async" in part["text"]
    cited = {a["url"] for a in part["annotations"] if a["type"] == "url_citation"}
    assert cited == {"https://docs.example.com/rust-async", "https://news.example.org/rust-async"}
    for a in part["annotations"]:
        assert part["text"][a["start_index"]:a["end_index"]] == a["url"] and a["title"]
    assert search[0].requests[-1][1]["q"] == "rust async"


def test_sources_only_when_included(http: httpx.Client) -> None:
    body = {"model": "test/echo", "input": search_prompt("test/echo", "pydantic"), "tools": [{"type": "web_search"}],
            "include": ["web_search_call.action.sources"]}
    resp, _ = create(http, body)
    sources = resp["output"][0]["action"]["sources"]
    assert [s["url"] for s in sources] == ["https://docs.example.com/pydantic", "https://news.example.org/pydantic"]
    plain = http.get(f"/v1/responses/{resp['id']}").json()
    assert "sources" not in plain["output"][0]["action"]
    shown = http.get(f"/v1/responses/{resp['id']}", params={"include[]": "web_search_call.action.sources"}).json()
    assert shown["output"][0]["action"]["sources"] == sources


def test_domain_filter_and_chain(http: httpx.Client) -> None:
    tool = {"type": "web_search", "filters": {"allowed_domains": ["example.org"]}}
    resp, _ = create(http, {"model": "test/echo", "input": search_prompt("test/echo", "zig"), "tools": [tool],
                            "include": ["web_search_call.action.sources"]})
    assert [s["url"] for s in resp["output"][0]["action"]["sources"]] == ["https://news.example.org/zig"]
    later, _ = create(http, {"model": "test/echo", "previous_response_id": resp["id"], "tools": [tool],
                             "input": "[[no-call]] [[history]]"})
    assert later["status"] == "completed"


@pytest.mark.parametrize("model", MODELS)
def test_without_a_backend_the_call_fails_and_the_model_is_told(offline: httpx.Client, model: str) -> None:
    resp, events = create(offline, {"model": model, "input": search_prompt(model, "news"), "tools": [CODEX_TOOL]})
    assert resp["status"] == "completed"
    call = resp["output"][0]
    assert call["type"] == "web_search_call" and call["status"] == "failed"
    assert "unavailable" in message(resp)["text"]
    assert "response.web_search_call.completed" not in [e["type"] for e in events]


def test_live_access_off_fails_too(http: httpx.Client) -> None:
    resp, _ = create(http, {"model": "test/echo", "input": search_prompt("test/echo", "x"),
                            "tools": [{"type": "web_search", "external_web_access": False}]})
    assert resp["output"][0]["status"] == "failed"
    assert "external_web_access" in message(resp)["text"]


def test_backend_failure_is_a_failed_call(http: httpx.Client) -> None:
    resp, _ = create(http, {"model": "test/echo", "input": search_prompt("test/echo", "fail now"),
                            "tools": [{"type": "web_search"}]})
    assert resp["output"][0]["status"] == "failed"
    assert "HTTP 500" in message(resp)["text"]


@pytest.mark.parametrize(("tool", "param"), [
    ({"type": "web_search", "search_context_size": "huge"}, "tools[0].search_context_size"),
    ({"type": "web_search", "filters": {"blocked_domains": ["x"]}}, "tools[0].filters"),
    ({"type": "web_search", "colour": "blue"}, "tools[0].colour"),
])
def test_invalid_entries(http: httpx.Client, tool: Json, param: str) -> None:
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "x", "tools": [tool]})
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


def test_replay_equals_live(http: httpx.Client) -> None:
    body = {"model": "test/echo", "input": search_prompt("test/echo", "replay me"), "tools": [{"type": "web_search"}],
            "stream": True}
    live, _ = parse_sse(http.post("/v1/responses", json=body).content)
    replay, _ = parse_sse(http.get(f"/v1/responses/{live[-1]['response']['id']}", params={"stream": "true"}).content)
    check_stream(replay)
    assert [e["type"] for e in replay] == [e["type"] for e in live]
    assert replay[-1]["response"]["output"] == live[-1]["response"]["output"]
