"""Model names as a newcomer types them: errors name what was typed and list
what exists (also before a stream starts), fallback lists skip models the
server does not have, the echo is canonical, and hidden defaults are
reported as applied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from responsa.api.app import create_app
from responsa.config import load_settings
from tests.helpers import serve_in_thread, validate_response


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server as ``make serve`` starts it: the embedded model is the default."""
    db = Path(tmp_path_factory.mktemp("names")) / "r.db"
    settings = load_settings(None, database_url=f"sqlite:///{db}")
    settings.providers.pop("openai", None)
    settings.providers.pop("anthropic", None)
    settings.default_model = "local/smollm2"
    with serve_in_thread(create_app(settings), lifespan="on") as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


def test_bare_unknown_name_names_what_was_typed_and_lists_models(offline: httpx.Client) -> None:
    r = offline.post("/v1/responses", json={"model": "gpt-4o", "input": "hi"})
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "'gpt-4o'" in error["message"] and "local/gpt-4o" not in error["message"]
    assert "local/smollm2" in error["message"] and "test/*" in error["message"]


def test_unknown_provider_hints_at_its_key(offline: httpx.Client) -> None:
    r = offline.post("/v1/responses", json={"model": "openai/gpt-4o-mini", "input": "hi"})
    assert r.status_code == 404 and "set OPENAI_API_KEY" in r.json()["error"]["message"]


def test_streamed_unknown_model_is_a_404_before_the_stream(offline: httpx.Client) -> None:
    r = offline.post("/v1/responses", json={"model": "local/nope", "input": "hi", "stream": True})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    assert "'local/nope'" in r.json()["error"]["message"]


def test_fallback_list_skips_unknown_providers(offline: httpx.Client) -> None:
    r = offline.post("/v1/responses", json={"model": ["openai/gpt-4o-mini", "test/echo"], "input": "hi"})
    assert r.status_code == 200, r.text
    body = r.json()
    validate_response(body)
    assert body["model"] == "test/echo" and body["output_text"] == "hi"
    r = offline.post("/v1/responses", json={"model": ["openai/a", "local/b"], "input": "hi"})
    assert r.status_code == 404 and "None of the models" in r.json()["error"]["message"]


def test_model_echo_is_canonical(offline: httpx.Client) -> None:
    """A bare name and an omitted model echo the same ``provider/model``;
    the embedded model's hidden defaults are echoed as applied. Streamed and
    dropped after ``response.created``, so no tokens are spent."""
    echoed = []
    for body in ({"model": "smollm2"}, {}, {"model": "local/smollm2"}):
        with offline.stream("POST", "/v1/responses", json={**body, "input": "hi", "stream": True}) as r:
            line = next(x for x in r.iter_lines() if x.startswith("data: "))
        created = httpx.Response(200, content=line[6:]).json()["response"]
        echoed.append((created["model"], created["temperature"], created["max_output_tokens"]))
    assert echoed == [("local/smollm2", 0.2, 512)] * 3
    with offline.stream("POST", "/v1/responses", json={"model": "smollm2", "input": "hi", "stream": True,
                                                        "temperature": 0.7, "max_output_tokens": 16}) as r:
        line = next(x for x in r.iter_lines() if x.startswith("data: "))
    created = httpx.Response(200, content=line[6:]).json()["response"]
    assert (created["temperature"], created["max_output_tokens"]) == (0.7, 16)


@pytest.mark.parametrize(("path", "hint"), [("/v1/v1/responses", "Did you mean /v1/responses?"),
                                            ("/responses", "Did you mean /v1/responses?")])
def test_wrong_base_url_gets_a_hint(offline: httpx.Client, path: str, hint: str) -> None:
    r = offline.post(path, json={"model": "test/echo", "input": "hi"})
    assert r.status_code == 404 and hint in r.json()["error"]["message"] and "base_url" in r.json()["error"]["message"]
