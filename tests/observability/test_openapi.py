"""``/openapi.json``: every route described, the request schema generated
from the model requests are validated with, every response a session of
real requests gets validates against the document, ``/docs`` served with no
external asset, and schemathesis over the whole document finds no 5xx."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from responsa.api import openapi
from responsa.api.app import create_app
from responsa.config import load_settings
from responsa.protocol.request import CreateResponse
from tests.helpers import serve_in_thread
from tests.observability.conftest import wait_until


@functools.cache
def document(server: str) -> dict[str, Any]:
    r = httpx.get(f"{server}/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc: dict[str, Any] = r.json()
    return doc


def _template(doc: dict[str, Any], path: str, method: str) -> str:
    """The document's path for ``path``: a literal path before a template
    (``/v1/responses/compact`` is not ``/v1/responses/{response_id}``)."""
    for template in sorted(doc["paths"], key=lambda t: t.count("{")):
        wildcard = ".+" if template.startswith("/v1/models/") else "[^/]+"
        if method in doc["paths"][template] and re.match("^" + re.sub(r"\{[^}]+\}", wildcard, template) + "$", path):
            return template
    raise AssertionError(f"{method.upper()} {path} is not in the document")


def check(doc: dict[str, Any], r: httpx.Response) -> None:
    """``r`` (a JSON body) validates against the document's schema for its
    operation and status (else the ``default`` error response)."""
    path = _template(doc, r.request.url.path, r.request.method.lower())
    op = doc["paths"][path][r.request.method.lower()]
    described = op["responses"].get(str(r.status_code)) or op["responses"]["default"]
    ctype = r.headers["content-type"].split(";")[0]
    assert ctype in described["content"], f"{r.request.method} {path} {r.status_code}: {ctype} not described"
    if ctype != "application/json":
        return
    schema = {**described["content"][ctype]["schema"], "components": doc["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(r.json()), key=str)
    assert not errors, f"{r.request.method} {path} {r.status_code}: {errors[0].message} at {list(errors[0].path)}"


def test_every_route_is_described(server: str) -> None:
    app = create_app(load_settings(None, database_url="sqlite:///:memory:"))
    assert openapi.undocumented(app.routes) == []
    doc = document(server)
    assert doc["openapi"] == "3.1.0"
    described = {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m != "x-websocket"}
    routes = {(m, openapi._doc_path(r.path)) for r in app.routes if hasattr(r, "methods")
              for m in (r.methods or set()) - {"HEAD"}}
    assert described == routes  # every route, and nothing that is not one
    assert "x-websocket" in doc["paths"]["/v1/responses"]
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name  # every schema is valid JSON Schema 2020-12
    # Generated from the model that validates requests, not written beside it.
    body = doc["components"]["schemas"]["CreateResponse"]
    assert set(body["properties"]) == set(CreateResponse.model_fields)
    assert body["additionalProperties"] is False  # unknown parameters are rejected, and the document says so


def test_responses_validate_against_the_document(server: str, http: httpx.Client) -> None:
    doc = document(server)
    calls: list[httpx.Response] = []
    rec = calls.append
    created = http.post("/v1/responses", json={"model": "test/echo", "input": "hello", "metadata": {"a": "b"}})
    rec(created)
    rid = created.json()["id"]
    rec(http.post("/v1/responses", json={"model": "test/echo", "input": "[[call:get_weather {\"city\": \"P\"}]]",
                                         "tools": [{"type": "function", "name": "get_weather",
                                                    "parameters": {"type": "object"}}]}))
    rec(http.post("/v1/responses", json={"model": "test/echo", "input": "[[error]]"}))
    rec(http.post("/v1/responses", json={"model": "test/echo", "input": "hi", "bogus": 1}))
    streamed = http.post("/v1/responses", json={"model": "test/echo", "input": "hi", "stream": True})
    rec(streamed)
    rec(http.get(f"/v1/responses/{rid}"))
    rec(http.get(f"/v1/responses/{rid}", params={"stream": "true"}))
    rec(http.get(f"/v1/responses/{rid}/input_items"))
    rec(http.get("/v1/responses/resp_nope"))
    background = http.post("/v1/responses", json={"model": "test/echo", "input": "[[long:50]] [[delay:20]]",
                                                  "background": True})
    rec(background)
    rec(http.post(f"/v1/responses/{background.json()['id']}/cancel"))
    rec(http.post("/v1/responses/input_tokens", json={"model": "test/echo", "input": "count me"}))
    rec(http.post("/v1/responses/compact", json={"model": "test/echo", "input": "compact me"}))
    rec(http.get("/v1/models"))
    rec(http.get("/v1/models/test/echo"))
    conv = http.post("/v1/conversations", json={"items": [{"role": "user", "content": "hi"}], "metadata": {"k": "v"}})
    rec(conv)
    cid = conv.json()["id"]
    rec(http.get(f"/v1/conversations/{cid}"))
    rec(http.post(f"/v1/conversations/{cid}", json={"metadata": {"k": "w"}}))
    items = http.post(f"/v1/conversations/{cid}/items", json={"items": [{"role": "user", "content": "more"}]})
    rec(items)
    rec(http.get(f"/v1/conversations/{cid}/items"))
    rec(http.get(f"/v1/conversations/{cid}/items/{items.json()['data'][0]['id']}"))
    rec(http.delete(f"/v1/conversations/{cid}/items/{items.json()['data'][0]['id']}"))
    rec(http.delete(f"/v1/conversations/{cid}"))
    prompt = http.post("/v1/prompts", json={"id": "pmpt_openapi_doc", "instructions": "Be {{tone}}.",
                                            "variables": {"tone": "brief"}})
    rec(prompt)
    rec(http.get("/v1/prompts"))
    rec(http.get("/v1/prompts/pmpt_openapi_doc"))
    rec(http.post("/v1/prompts/pmpt_openapi_doc/versions", json={"instructions": "Be {{tone}}!"}))
    rec(http.get("/v1/prompts/pmpt_openapi_doc/versions"))
    rec(http.delete("/v1/prompts/pmpt_openapi_doc"))
    rec(http.post("/v1/chat/completions", json={"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]}))
    rec(http.post("/v1/chat/completions", json={"model": "test/echo", "messages": [{"role": "user", "content": "hi"}],
                                                "stream": True}))
    hi = [{"role": "user", "content": "hi"}]
    rec(http.post("/v1/messages", json={"model": "test/echo", "max_tokens": 8, "messages": hi}))
    rec(http.post("/v1/messages", json={"model": "test/echo", "max_tokens": 8, "messages": hi, "stream": True}))
    rec(http.post("/v1/messages", json={"model": "test/echo", "messages": hi}))  # 400, Anthropic's shape
    rec(http.post("/v1/messages/count_tokens", json={"model": "test/echo", "messages": hi}))
    rec(http.get("/v1/usage"))
    rec(http.get("/v1/responses", params={"limit": 5}))
    rec(http.get("/v1/conversations", params={"limit": 5}))
    rec(http.get("/console"))
    rec(http.delete(f"/v1/responses/{rid}"))
    for path in ("/healthz", "/health", "/readyz", "/metrics", "/openapi.json", "/docs"):
        rec(http.get(path))
    assert {r.status_code for r in calls} >= {200, 400, 404}
    for r in calls:
        check(doc, r)


def test_docs_page_has_no_external_assets(server: str) -> None:
    r = httpx.get(f"{server}/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text), "the page loads nothing from elsewhere"
    assert 'fetch("openapi.json")' in r.text


def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    """Generated requests for every operation (bounded budget): never a 5xx."""
    settings = load_settings(None, database_url=f"sqlite:///{tmp_path}/fuzz.db", default_model="test/echo")
    with serve_in_thread(create_app(settings), lifespan="on") as url:
        wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200)
        out = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--checks", "not_a_server_error",
             "--max-examples", "8", "--phases", "examples,fuzzing", "--seed", "14", "--request-timeout", "20",
             "--header", "Authorization: Bearer schemathesis", "--exclude-path", "/metrics",
             "--generation-deterministic", "--suppress-health-check", "all"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its .schemathesis cache stays there
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    tested = re.search(r"Tested: (\d+)", out.stdout)
    cases = re.search(r"(\d+) generated, (\d+) passed", out.stdout)
    assert tested and int(tested.group(1)) >= 25, out.stdout[-3000:]  # every operation but /metrics
    assert cases and cases.group(1) == cases.group(2) and int(cases.group(1)) >= 100, out.stdout[-3000:]

