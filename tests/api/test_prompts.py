"""Reusable prompts end to end: the ``/v1/prompts`` library over raw HTTP,
``responses.create(prompt=...)`` through the ``openai`` SDK, and prompts
seeded from ``prompts_dir`` across server restarts."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from tests.helpers import Serve, server_settings, validate_response

PIXEL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()


def _create(http: httpx.Client, **body: Any) -> dict[str, Any]:
    r = http.post("/v1/prompts", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def _dump(r: Any) -> dict[str, Any]:
    data: dict[str, Any] = r.model_dump(mode="json", exclude_unset=True)
    validate_response(data)
    return data


def test_prompt_library_versions(http: httpx.Client) -> None:
    pid = f"support-{uuid.uuid4().hex[:8]}"
    v1 = _create(http, id=pid, instructions="You are a {{role}}.",
                 input=[{"role": "user", "content": "About {{topic}}"}], metadata={"team": "docs"})
    assert (v1["id"], v1["object"], v1["version"]) == (pid, "prompt", "1")
    assert v1["variables"] == ["role", "topic"] and v1["metadata"] == {"team": "docs"}

    v2 = http.post(f"/v1/prompts/{pid}/versions", json={"instructions": "You are a terse {{role}}."}).json()
    assert v2["version"] == "2" and v2["variables"] == ["role"] and v2["input"] == []
    assert http.get(f"/v1/prompts/{pid}").json() == v2
    assert http.get(f"/v1/prompts/{pid}", params={"version": 1}).json() == v1, "old versions never change"
    versions = http.get(f"/v1/prompts/{pid}/versions").json()
    assert [v["version"] for v in versions["data"]] == ["2", "1"] and versions["has_more"] is False
    asc = http.get(f"/v1/prompts/{pid}/versions", params={"order": "asc", "limit": 1}).json()
    assert [v["version"] for v in asc["data"]] == ["1"] and asc["has_more"] is True

    generated = _create(http, instructions="plain")
    assert generated["id"].startswith("pmpt_")
    listed = http.get("/v1/prompts", params={"order": "asc", "limit": 100}).json()
    latest = {p["id"]: p["version"] for p in listed["data"]}
    assert latest[pid] == "2" and latest[generated["id"]] == "1"

    dup = http.post("/v1/prompts", json={"id": pid, "instructions": "x"})
    assert dup.status_code == 409 and dup.json()["error"]["param"] == "id"
    deleted = http.delete(f"/v1/prompts/{pid}")
    assert deleted.json() == {"id": pid, "object": "prompt.deleted", "deleted": True}
    assert http.get(f"/v1/prompts/{pid}").status_code == 404
    assert http.post(f"/v1/prompts/{pid}/versions", json={"instructions": "x"}).status_code == 404


def test_prompt_rendering(client: OpenAI, http: httpx.Client) -> None:
    pid = f"tutor-{uuid.uuid4().hex[:8]}"
    _create(http, id=pid, model="test/echo", instructions="You teach {{subject}}.",
            input=[{"role": "developer", "content": "Level: {{level}}"}])
    http.post(f"/v1/prompts/{pid}/versions", json={"instructions": "v2 teaches {{subject}}.",
                                                    "input": [{"role": "developer", "content": "Level: {{level}}"}]})
    variables = {"subject": "chemistry", "level": {"type": "input_text", "text": "beginner"}}

    r = client.responses.create(prompt={"id": pid, "variables": variables}, input="[[history]]")
    data = _dump(r)
    assert r.output_text == "developer: Level: beginner | user:"
    assert data["model"] == "test/echo", "the prompt's model applies when the request names none"
    assert data["instructions"] == "v2 teaches chemistry."
    assert data["prompt"] == {"id": pid, "version": "2", "variables": variables}, "echoes the resolved version"

    # Pinned to version 1; the request's instructions are appended to the prompt's.
    pinned = client.responses.create(model="test/echo", prompt={"id": pid, "version": "1", "variables": variables},
                                     instructions="Be brief.", input="[[instructions]]")
    _dump(pinned)
    assert pinned.output_text == "You teach chemistry.\n\nBe brief."
    assert pinned.prompt is not None and pinned.prompt.version == "1"
    # The rendered prompt items are this response's input, ahead of the request's.
    inputs = client.responses.input_items.list(pinned.id, order="asc").data
    assert [(it.role, it.content[0].text) for it in inputs] == [("developer", "Level: beginner"),  # type: ignore[union-attr]
                                                                 ("user", "[[instructions]]")]


def test_prompt_file_and_image_variables(client: OpenAI, http: httpx.Client) -> None:
    pid = f"describe-{uuid.uuid4().hex[:8]}"
    _create(http, id=pid, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Describe {{img}} in {{style}}, then read {{doc}}"}]}])
    doc = {"type": "input_file", "filename": "a.txt", "file_data": "data:text/plain;base64,aGk="}
    r = client.responses.create(model="test/echo", prompt={"id": pid, "variables": {
        "img": {"type": "input_image", "image_url": PIXEL}, "style": "haiku", "doc": doc}})
    _dump(r)
    parts = client.responses.input_items.list(r.id).data[0].content  # type: ignore[union-attr]
    assert [p.type for p in parts] == ["input_text", "input_image", "input_text", "input_file"]
    assert parts[0].text == "Describe " and parts[2].text == " in haiku, then read "  # type: ignore[union-attr]
    assert parts[1].image_url == PIXEL and parts[3].filename == "a.txt"  # type: ignore[union-attr]


def test_prompt_errors(client: OpenAI, http: httpx.Client, server: str) -> None:
    pid = f"err-{uuid.uuid4().hex[:8]}"
    _create(http, id=pid, instructions="Hi {{name}}, about {{topic}}.")

    def bad(prompt: dict[str, Any], exc: type[Exception] = BadRequestError) -> dict[str, Any]:
        with pytest.raises(exc) as info:
            client.responses.create(model="test/echo", prompt=prompt, input="x")  # type: ignore[arg-type]
        body: dict[str, Any] = info.value.body  # type: ignore[attr-defined]
        return body

    assert bad({"id": pid, "variables": {"name": "Ada"}})["param"] == "prompt.variables.topic"
    extra = bad({"id": pid, "variables": {"name": "Ada", "topic": "t", "mood": "x"}})
    assert extra["param"] == "prompt.variables.mood" and extra["code"] == "unknown_parameter"
    image_in_instructions = bad({"id": pid, "variables": {"name": {"type": "input_image", "image_url": PIXEL},
                                                          "topic": "t"}})
    assert image_in_instructions["param"] == "prompt.variables.name"
    assert bad({"id": pid, "variables": {"name": 3, "topic": "t"}})["param"] == "prompt.variables.name"
    missing_version = bad({"id": pid, "version": "7", "variables": {"name": "a", "topic": "b"}}, NotFoundError)
    assert missing_version["param"] == "prompt.version"
    assert bad({"id": "no-such-prompt"}, NotFoundError)["code"] == "prompt_not_found"
    assert bad({"variables": {}})["param"] == "prompt.id"

    assert http.post("/v1/prompts", json={"metadata": {"k": "v"}}).json()["error"]["param"] == "instructions"
    too_big = http.post("/v1/prompts", json={"instructions": "x", "metadata": {f"k{i}": "v" for i in range(17)}})
    assert too_big.status_code == 400 and too_big.json()["error"]["param"] == "metadata"
    assert http.post("/v1/prompts", json={"instructions": "x", "tools": []}).json()["error"]["param"] == "tools"
    assert http.post("/v1/prompts", json={"id": "bad id!", "instructions": "x"}).json()["error"]["param"] == "id"
    assert http.get(f"/v1/prompts/{pid}", params={"version": "x"}).status_code == 400
    assert http.get(f"/v1/prompts/{pid}", params={"version": "9"}).json()["error"]["param"] == "version"

    # Another API key is another tenant: it can neither see nor use the prompt.
    other = OpenAI(base_url=f"{server}/v1", api_key="prompt-intruder", max_retries=0)
    with pytest.raises(NotFoundError):
        other.responses.create(model="test/echo", prompt={"id": pid, "variables": {"name": "a", "topic": "b"}},
                               input="x")
    with httpx.Client(base_url=server, headers={"authorization": "Bearer prompt-intruder"}) as intruder:
        assert intruder.get(f"/v1/prompts/{pid}").status_code == 404
        assert pid not in {p["id"] for p in intruder.get("/v1/prompts", params={"limit": 100}).json()["data"]}
        assert intruder.delete(f"/v1/prompts/{pid}").status_code == 404
        assert intruder.post(f"/v1/prompts/{pid}/versions", json={"instructions": "x"}).status_code == 404
    assert http.get(f"/v1/prompts/{pid}").json()["version"] == "1"


def test_seeded_prompts(tmp_path: Path, serve_responsa: Serve) -> None:
    """Files in ``prompts_dir`` become server prompts every tenant can use
    and none can change; an edited file adds a version at the next start,
    an unchanged one adds nothing."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "greeter.toml").write_text('instructions = "Greet {{name}} warmly."\nmodel = "test/echo"\n')
    (folder / "faq.json").write_text('{"id": "faq-bot", "input": [{"role": "user", "content": "Q: {{q}}"}]}')
    settings = server_settings(tmp_path, prompts_dir=str(folder))

    def serve_and(check: Any) -> None:
        with serve_responsa(settings) as url:
            check(url)

    def first(url: str) -> None:
        for key in ("tenant-a", "tenant-b"):
            client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            r = client.responses.create(prompt={"id": "greeter", "variables": {"name": "Ada"}},
                                        input="[[instructions]]")
            assert r.output_text == "Greet Ada warmly." and r.prompt is not None and r.prompt.version == "1"
            faq = client.responses.create(prompt={"id": "faq-bot", "variables": {"q": "why?"}}, input="[[history]]")
            assert faq.output_text == "user: Q: why? | user:"
        with httpx.Client(base_url=url, headers={"authorization": "Bearer tenant-a"}) as http:
            assert http.delete("/v1/prompts/greeter").status_code == 403
            assert http.post("/v1/prompts/greeter/versions", json={"instructions": "x"}).status_code == 403
            assert http.post("/v1/prompts", json={"id": "greeter", "instructions": "x"}).status_code == 409

    serve_and(first)
    (folder / "greeter.toml").write_text('instructions = "Hello {{name}}!"\n')

    def second(url: str) -> None:
        with httpx.Client(base_url=url) as http:
            assert [v["version"] for v in http.get("/v1/prompts/greeter/versions").json()["data"]] == ["2", "1"]
            assert http.get("/v1/prompts/faq-bot").json()["version"] == "1"
            assert http.get("/v1/prompts/greeter", params={"version": 1}).json()["instructions"] == \
                "Greet {{name}} warmly."

    serve_and(second)
    serve_and(second)  # unchanged files: still two versions
