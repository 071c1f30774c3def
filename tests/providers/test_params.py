"""The newer request parameters (``protocol/params.py``), through the real
server: each is accepted with its documented effect or refused with a 400
that names it, and the upstream request shows what was (not) forwarded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from responsa.api.app import create_app
from responsa.config import ProviderConfig, load_settings
from tests.fakes.openai_chat import FakeChat
from tests.fakes.openai_responses import FakeResponses
from tests.helpers import serve_in_thread, validate_response

Json = dict[str, Any]
CODEX_METADATA = {"session_id": "0198", "x-codex-turn-metadata": "{" + '"k": "v", ' * 120 + '"end": 1}'}


@pytest.fixture(scope="module")
def http(chat_fake_server: tuple[FakeChat, str], responses_fake_server: tuple[FakeResponses, str],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = load_settings(None, database_url=f"sqlite:///{tmp_path_factory.mktemp('params')}/r.db",
                             default_model="test/echo")
    settings.providers["chat"] = ProviderConfig(name="chat", kind="chat-completions", base_url=chat_fake_server[1])
    settings.providers["native"] = ProviderConfig(name="native", kind="openai-responses",
                                                  base_url=responses_fake_server[1])
    with serve_in_thread(create_app(settings), lifespan="on") as url, \
            httpx.Client(base_url=url, headers={"authorization": "Bearer k"}, timeout=30) as c:
        yield c


def _ok(r: httpx.Response) -> Json:
    assert r.status_code == 200, r.text
    body: Json = r.json()
    validate_response(body)
    return body


def _error(r: httpx.Response, param: str) -> Json:
    assert r.status_code == 400, r.text
    error: Json = r.json()["error"]
    assert error["param"] == param, error
    return error


def test_client_metadata_is_accepted_and_never_sent_upstream(http: httpx.Client, chat_fake: FakeChat,
                                                             responses_fake: FakeResponses) -> None:
    for model, fake in (("chat/m", chat_fake), ("native/gpt-fake", responses_fake)):
        _ok(http.post("/v1/responses", json={"model": model, "input": "hi", "client_metadata": CODEX_METADATA}))
        assert "client_metadata" not in fake.last and "0198" not in str(fake.last)
    _error(http.post("/v1/responses", json={"input": "hi", "client_metadata": {"k": 1}}), "client_metadata.k")


def test_native_parameters_reach_a_responses_upstream_only(http: httpx.Client, chat_fake: FakeChat,
                                                           responses_fake: FakeResponses) -> None:
    params = {"prompt_cache_options": {"mode": "explicit", "ttl": "12h"}, "prompt_cache_retention": "24h",
              "image": {"context_compression": "disabled"}, "safety_identifier": "u" * 128,
              "service_tier": "fast", "prompt_cache_key": "session-1"}
    body = _ok(http.post("/v1/responses", json={"model": "native/gpt-fake", "input": "hi", **params}))
    sent = responses_fake.last
    for key in ("prompt_cache_options", "prompt_cache_retention", "image", "prompt_cache_key"):
        assert sent[key] == params[key] and body[key] == params[key]
    assert body["service_tier"] == "priority"
    _ok(http.post("/v1/responses", json={"model": "chat/m", "input": "hi", **params}))
    assert not {"prompt_cache_options", "prompt_cache_retention", "image", "prompt_cache_key"} & set(chat_fake.last)


def test_moderation_needs_a_responses_upstream(http: httpx.Client, responses_fake: FakeResponses) -> None:
    moderation = {"model": "omni-moderation-latest", "policy": {"input": {"mode": "block"}}}
    _ok(http.post("/v1/responses", json={"model": "native/gpt-fake", "input": "hi", "moderation": moderation}))
    assert responses_fake.last["moderation"] == moderation
    error = _error(http.post("/v1/responses", json={"model": "test/echo", "input": "hi", "moderation": moderation}),
                   "moderation")
    assert "openai-responses" in error["message"]
    _error(http.post("/v1/responses", json={"input": "hi", "access_programs": {"cyber": "daybreak_red"}}),
           "access_programs.cyber")
    _ok(http.post("/v1/responses", json={"input": "hi", "access_programs": {"cyber": "standard"}}))


def test_background_options(http: httpx.Client) -> None:
    _ok(http.post("/v1/responses", json={"input": "hi", "background_options": {"completion_window": "soonest",
                                                                                "continuation_id": "c1"}}))
    _error(http.post("/v1/responses", json={"input": "hi", "background_options": {"completion_window": "2h"}}),
           "background_options.completion_window")
    r = http.post("/v1/responses", json={"input": "hi", "background": True,
                                         "background_options": {"completion_window": "8h"}})
    assert r.status_code == 200 and r.json()["background"] is True


def test_context_management(http: httpx.Client) -> None:
    _ok(http.post("/v1/responses", json={"input": "hi", "context_management": [
        {"type": "compaction", "compact_threshold": 200_000}]}))
    _error(http.post("/v1/responses", json={"input": "hi", "context_management": [{"type": "forget"}]}),
           "context_management[0].type")


@pytest.mark.parametrize(("body", "param"), [
    ({"prompt_cache_options": {"ttl": "1y"}}, "prompt_cache_options.ttl"),
    ({"prompt_cache_options": {"prewarm": "yes"}}, "prompt_cache_options.prewarm"),
    ({"prompt_cache_options": {"speed": 1}}, "prompt_cache_options.speed"),
    ({"prompt_cache_retention": "forever"}, "prompt_cache_retention"),
    ({"moderation": {"policy": {}}}, "moderation.model"),
    ({"moderation": {"model": "m", "policy": {"input": {"mode": "shout"}}}}, "moderation.policy.input.mode"),
    ({"image": {"context_compression": "max"}}, "image.context_compression"),
    ({"background_options": {"completion_window": "1d"}}, "background_options.completion_window"),
    ({"context_management": [{"type": "compaction", "compact_threshold": 0}]},
     "context_management[0].compact_threshold"),
    ({"context_management": [{"type": "compaction", "when": "now"}]}, "context_management[0].when"),
])
def test_invalid_values_are_400_naming_them(http: httpx.Client, body: Json, param: str) -> None:
    _error(http.post("/v1/responses", json={"input": "hi", **body}), param)


def _ok_output(r: httpx.Response) -> list[Json]:
    output: list[Json] = _ok(r)["output"]
    return output


def test_compaction_trigger_compacts_and_later_turns_expand_it(http: httpx.Client) -> None:
    first = _ok(http.post("/v1/responses", json={"input": "remember the word zebra"}))
    output = _ok_output(http.post("/v1/responses", json={"previous_response_id": first["id"],
                                                         "input": [{"type": "compaction_trigger"}]}))
    assert [it["type"] for it in output] == ["compaction"]
    # A client that keeps only the compaction item (store: false, as Codex does) still has the whole context.
    later = _ok(http.post("/v1/responses", json={"store": False, "input": [
        output[0], {"role": "user", "content": "[[history]]"}]}))
    assert "remember the word zebra" in later["output"][0]["content"][0]["text"]
    _error(http.post("/v1/responses", json={"input": [{"type": "compaction_trigger"}, {"role": "user",
                                                                                       "content": "x"}]}),
           "input[0]")


def test_context_management_threshold_compacts_first(http: httpx.Client) -> None:
    body = {"input": "one two three four five six", "context_management": [{"type": "compaction",
                                                                            "compact_threshold": 3}]}
    output = _ok_output(http.post("/v1/responses", json=body))
    assert [it["type"] for it in output] == ["compaction", "message"]
    below = {**body, "context_management": [{"type": "compaction", "compact_threshold": 100_000}]}
    assert [it["type"] for it in _ok_output(http.post("/v1/responses", json=below))] == ["message"]
