"""``GET /v1/responses`` and ``GET /v1/conversations`` (the console's lists) and
the console's static files, through the real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from responsa.config import load_settings
from tests.helpers import validate_response


@pytest.fixture
def me(server: str) -> Iterator[httpx.Client]:
    """A client with a brand-new key: its own, empty tenant."""
    with httpx.Client(base_url=server, headers={"authorization": f"Bearer k-{uuid.uuid4().hex}"}, timeout=30) as c:
        yield c


def _ids(c: httpx.Client, **params: object) -> list[str]:
    r = c.get("/v1/responses", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list"
    for resp in body["data"]:
        validate_response(resp)
    return [x["id"] for x in body["data"]]


def test_lists_newest_first_with_cursor_and_filters(me: httpx.Client) -> None:
    made = []
    for i, model in enumerate(["test/echo", "test/other", "test/echo"]):
        made.append(me.post("/v1/responses", json={"model": model, "input": f"hello {i}",
                                                    "metadata": {"n": str(i)}}).json()["id"])
    assert _ids(me) == made[::-1]
    first = me.get("/v1/responses", params={"limit": 2}).json()
    assert first["has_more"] and first["first_id"] == made[2] and first["last_id"] == made[1]
    assert _ids(me, limit=2, after=first["last_id"]) == [made[0]]
    assert _ids(me, order="asc") == made
    assert _ids(me, model="test/echo") == [made[2], made[0]]
    assert _ids(me, **{"metadata[n]": "1"}) == [made[1]]
    assert _ids(me, status="completed,failed") == made[::-1]
    assert _ids(me, status="failed") == []
    assert _ids(me, id_prefix=made[1][:16]) == [made[1]]
    assert _ids(me, previous_response_id=made[0]) == []
    assert _ids(me, background="false") == made[::-1]


def test_keys_see_only_their_own(me: httpx.Client, server: str) -> None:
    rid = me.post("/v1/responses", json={"model": "test/echo", "input": "mine"}).json()["id"]
    conv = me.post("/v1/conversations", json={}).json()["id"]
    with httpx.Client(base_url=server, headers={"authorization": f"Bearer k-{uuid.uuid4().hex}"}) as other:
        assert _ids(other) == []
        assert other.get("/v1/conversations").json()["data"] == []
        r = other.get("/v1/responses", params={"after": rid})
        assert r.status_code == 400 and r.json()["error"]["param"] == "after"
    assert [c["id"] for c in me.get("/v1/conversations").json()["data"]] == [conv]


@pytest.mark.parametrize(("params", "param"), [
    ({"bogus": "1"}, "bogus"), ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"order": "up"}, "order"),
    ({"status": "done"}, "status"), ({"background": "yes"}, "background"), ({"before": "resp_x"}, "before"),
])
def test_bad_list_parameters_are_400s_naming_them(me: httpx.Client, params: dict[str, str], param: str) -> None:
    r = me.get("/v1/responses", params=params)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param
    assert me.get("/v1/conversations", params={"model": "x"}).json()["error"]["param"] == "model"


def test_console_files_are_served_with_a_strict_policy(server: str) -> None:
    page = httpx.get(f"{server}/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    for name in ("app.js", "api.js", "dom.js", "items.js", "views.js", "playground.js", "style.css"):
        r = httpx.get(f"{server}/console/{name}")
        assert r.status_code == 200 and r.content
        assert "http://" not in r.text and "https://" not in r.text.replace("https://example.com/mcp", "")
    for missing in ("nope.js", "..%2Fapi%2Fapp.py", "app.py"):
        assert httpx.get(f"{server}/console/{missing}").status_code == 404


def test_console_switch_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "responsa.toml"
    config.write_text("console = false\n")
    assert load_settings(config).console is False
    assert load_settings(None).console is True
    monkeypatch.setenv("RESPONSA_CONSOLE", "0")
    assert load_settings(None).console is False
    monkeypatch.setenv("RESPONSA_CONSOLE", "1")
    assert load_settings(None).console is True
