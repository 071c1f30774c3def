"""The console in a real headless Chromium against a real server.

Every wait is on a condition (Playwright's ``expect``), never a fixed sleep.
Every run takes the screenshots of the main views; with
``RESPONSA_UPDATE_SCREENSHOTS=1`` they are written to ``docs/`` (shown in the
README), otherwise to a temporary folder, so a test run never dirties the
working tree with new PNG bytes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.conftest import KEY_A, KEY_B
from tests.tools.support import TOKEN

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"
UPDATE = os.environ.get("RESPONSA_UPDATE_SCREENSHOTS") == "1"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture
def page(chromium: Any, console_server: str, shots: Path) -> Any:
    context = chromium.new_context(viewport={"width": 1360, "height": 900}, base_url=console_server)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.shots = shots
    pg.server = console_server
    pg.requests_seen = []  # every URL and header the page sends
    pg.on("request", lambda req: pg.requests_seen.append((req.url, req.headers)))
    pg.console_errors = []
    pg.on("console", lambda msg: msg.type == "error" and pg.console_errors.append(msg.text))
    pg.on("pageerror", lambda exc: pg.console_errors.append(str(exc)))
    yield pg
    context.close()


def login(page: Any, key: str) -> None:
    from playwright.sync_api import expect

    page.goto("/console")
    page.get_by_test_id("key-input").fill(key)
    page.get_by_test_id("login-button").click()
    expect(page.locator("#nav")).to_be_visible()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return DOCS if UPDATE else Path(tmp_path_factory.mktemp("screenshots"))


def shot(page: Any, name: str) -> None:
    folder: Path = page.shots
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / f"console-{name}.png"), full_page=False)
    assert (folder / f"console-{name}.png").stat().st_size > 10_000


def assert_no_secret_leaked(page: Any, *secrets: str) -> None:
    """A secret may travel only as this page's own Authorization header:
    never in a URL, never in the document."""
    html = page.content()
    for secret in secrets:
        assert secret not in html
        for url, headers in page.requests_seen:
            assert secret not in url
            for name, value in headers.items():
                if secret in value:
                    assert name == "authorization" and value == f"Bearer {secret}"


def test_playground_tool_call_list_detail_chain_and_events(page: Any, console_server: str) -> None:
    from playwright.sync_api import expect

    login(page, KEY_A)
    page.goto("/console#/playground")
    page.get_by_test_id("input").fill("What is the weather in Paris? [[reasoning:The user wants weather.]]")
    page.get_by_test_id("add-function").click()
    page.get_by_test_id("tool-name").fill("get_weather")
    page.get_by_test_id("tool-description").fill("Current weather for a city")
    page.get_by_test_id("send").click()
    result = page.get_by_test_id("playground-output")
    expect(page.get_by_test_id("run-status").get_by_test_id("status")).to_have_text("completed")
    expect(result.get_by_test_id("item-function_call")).to_contain_text("get_weather")
    expect(result.get_by_test_id("item-reasoning")).to_contain_text("The user wants weather.")
    expect(page.get_by_test_id("events")).to_contain_text("response.function_call_arguments.delta")
    expect(page.get_by_test_id("waterfall")).to_contain_text("function_call get_weather")
    first_id = page.get_by_test_id("result-link").inner_text()
    expect(page.get_by_test_id("previous")).to_have_value(first_id)
    shot(page, "playground")

    # Continue the chain with the tool's output.
    page.get_by_test_id("tool-output").fill('{"forecast": "sunny, 21 C"}')
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("result-link")).not_to_have_text(first_id)
    expect(page.get_by_test_id("run-status").get_by_test_id("status")).to_have_text("completed")
    expect(result.get_by_test_id("item-message")).to_contain_text("sunny, 21 C")
    second_id = page.get_by_test_id("result-link").inner_text()

    # Both turns in the list, newest first.
    page.goto("/console#/responses")
    rows = page.get_by_test_id("response-row")
    expect(rows).to_have_count(2)
    assert rows.nth(0).get_attribute("data-id") == second_id
    assert rows.nth(1).get_attribute("data-id") == first_id
    shot(page, "responses")

    # Open the second turn, follow the chain back to the first.
    rows.nth(0).get_by_role("link").first.click()
    expect(page.get_by_test_id("response-id")).to_have_text(second_id)
    expect(page.get_by_test_id("item-function_call_output")).to_contain_text("sunny, 21 C")
    nodes = page.get_by_test_id("chain-node")
    expect(nodes).to_have_count(2)
    nodes.nth(0).click()
    expect(page.get_by_test_id("response-id")).to_have_text(first_id)
    output = page.get_by_test_id("output")
    expect(output.get_by_test_id("item-function_call")).to_contain_text("get_weather")
    expect(output.get_by_test_id("item-function_call")).to_contain_text('"city": "test"')
    expect(page.get_by_test_id("events")).to_contain_text("response.output_item.done")
    expect(page.get_by_test_id("events")).to_contain_text("response.completed")
    expect(page.get_by_test_id("params")).to_contain_text("get_weather")
    expect(page.get_by_test_id("usage")).to_contain_text("input tokens")
    shot(page, "detail")

    # Search by id prefix and by full id.
    page.goto("/console#/responses")
    page.get_by_test_id("search").fill(first_id[:14])
    page.get_by_test_id("apply-filters").click()
    expect(rows).to_have_count(1)
    page.get_by_test_id("search").fill(second_id)
    page.get_by_test_id("apply-filters").click()
    expect(page.get_by_test_id("response-id")).to_have_text(second_id)

    # The list is live: a response made elsewhere appears without a reload.
    page.goto("/console#/responses")
    expect(rows).to_have_count(2)
    with httpx.Client(base_url=console_server, headers={"authorization": f"Bearer {KEY_A}"}) as a:
        third = a.post("/v1/responses", json={"model": "test/echo", "input": "from elsewhere"}).json()["id"]
    expect(rows).to_have_count(3)
    assert rows.nth(0).get_attribute("data-id") == third
    assert_no_secret_leaked(page, KEY_A)
    assert not page.console_errors


def test_cancel_a_background_job(page: Any) -> None:
    from playwright.sync_api import expect

    login(page, KEY_A)
    page.goto("/console#/playground")
    page.get_by_test_id("stream").uncheck()
    page.get_by_test_id("background").check()
    page.get_by_test_id("input").fill("[[delay:200]] [[long:500]]")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("run-status").get_by_test_id("status")).to_have_text(re.compile("queued|in_progress"))
    job_id = page.get_by_test_id("result-link").inner_text()

    page.goto("/console#/jobs")
    row = page.locator(f'[data-testid="job-row"][data-id="{job_id}"]')
    expect(row).to_be_visible()
    expect(row.get_by_test_id("status")).to_have_text(re.compile("queued|in_progress"))
    shot(page, "jobs")
    row.get_by_test_id("cancel-job").click()
    expect(row).to_have_count(0)  # gone from "running or queued"
    page.get_by_test_id("jobs-filter").select_option("cancelled")
    expect(row.get_by_test_id("status")).to_have_text("cancelled")

    page.goto(f"/console#/responses/{job_id}")
    expect(page.get_by_test_id("response-id")).to_have_text(job_id)
    expect(page.locator(".detail-head").get_by_test_id("status")).to_have_text("cancelled")
    # the stream ends with the terminal event carrying the cancelled response
    expect(page.get_by_test_id("events").locator("tr").last).to_contain_text("cancelled")

    # A running job's detail follows its events live; its Cancel button ends it.
    with httpx.Client(base_url=page.server, headers={"authorization": f"Bearer {KEY_A}"}) as a:
        running = a.post("/v1/responses", json={"model": "test/echo", "input": "[[delay:100]] [[long:600]]",
                                                "background": True}).json()
    page.goto(f"/console#/responses/{running['id']}")
    head = page.locator(".detail-head")
    expect(head.get_by_test_id("status")).to_have_text(re.compile("queued|in_progress"))
    expect(page.get_by_test_id("events")).to_contain_text("response.output_text.delta")  # arriving while it runs
    expect(page.get_by_test_id("output").get_by_test_id("item-message")).to_contain_text("word3")
    head.get_by_test_id("cancel").click()
    expect(head.get_by_test_id("status")).to_have_text("cancelled")
    expect(page.get_by_test_id("events").locator("tr").last).to_contain_text("cancelled")
    assert not page.console_errors


def test_mcp_call_rendered_and_its_credential_never_shown(page: Any, mcp_vault: str) -> None:
    from playwright.sync_api import expect

    login(page, KEY_A)
    page.goto("/console#/playground")
    page.get_by_test_id("input").fill('[[call:add {"a": 2, "b": 3}]]')
    page.get_by_test_id("add-mcp").click()
    page.get_by_test_id("mcp-label").fill("vault")
    page.get_by_test_id("mcp-url").fill(mcp_vault)
    page.get_by_test_id("mcp-headers").fill(f'{{"Authorization": "Bearer {TOKEN}"}}')
    page.get_by_test_id("send").click()
    out = page.get_by_test_id("playground-output")
    expect(page.get_by_test_id("run-status").get_by_test_id("status")).to_have_text("completed")
    expect(out.get_by_test_id("item-mcp_list_tools")).to_contain_text("shout")
    expect(out.get_by_test_id("item-mcp_call")).to_contain_text("vault.add")
    expect(out.get_by_test_id("item-mcp_call")).to_contain_text("5")
    rid = page.get_by_test_id("result-link").inner_text()
    page.goto(f"/console#/responses/{rid}")
    expect(page.get_by_test_id("output").get_by_test_id("item-mcp_call")).to_contain_text("vault.add")
    expect(page.get_by_test_id("params")).to_contain_text("[redacted]")
    expect(page.get_by_test_id("waterfall")).to_contain_text(re.compile(r"mcp_call add \(\d+ ms\)"))
    page.get_by_text("Response JSON").click()
    assert_no_secret_leaked(page, TOKEN, KEY_A)
    # The token went out once, inside the create request's body, and nowhere else.
    assert not any(TOKEN in url for url, _ in page.requests_seen)
    assert not page.console_errors


def test_second_key_sees_none_of_the_first_keys_data(page: Any, console_server: str) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=console_server, headers={"authorization": f"Bearer {KEY_A}"}) as a:
        mine = a.post("/v1/responses", json={"model": "test/echo", "input": "private to A",
                                             "metadata": {"owner": "alpha"}}).json()
        conv = a.post("/v1/conversations", json={"metadata": {"owner": "alpha"}}).json()
    login(page, KEY_B)
    page.goto("/console#/responses")
    expect(page.get_by_text("No responses yet")).to_be_visible()
    page.goto("/console#/conversations")
    expect(page.get_by_text("No conversations yet")).to_be_visible()
    page.goto("/console#/jobs")
    page.get_by_test_id("jobs-filter").select_option("")
    expect(page.get_by_text("No background jobs here")).to_be_visible()
    page.goto(f"/console#/responses/{mine['id']}")
    expect(page.get_by_role("alert")).to_contain_text("not found")
    page.goto(f"/console#/conversations/{conv['id']}")
    expect(page.get_by_role("alert")).to_contain_text("not found")
    assert "private to A" not in page.content()
    assert_no_secret_leaked(page, KEY_B, KEY_A)

    # A wrong key is refused at the door, and signing out forgets the key.
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    page.get_by_test_id("key-input").fill("not-a-key")
    page.get_by_test_id("login-button").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")


def test_conversations_and_prompt_versions(page: Any, console_server: str) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=console_server, headers={"authorization": f"Bearer {KEY_A}"}) as a:
        conv = a.post("/v1/conversations", json={"metadata": {"topic": "travel"}}).json()
        for text in ("Plan a trip to Lisbon", "Now make it three days"):
            a.post("/v1/responses", json={"model": "test/echo", "input": text, "conversation": conv["id"]})
        a.post("/v1/prompts", json={"id": "greeter", "instructions": "Greet the user.\nBe brief."})
        a.post("/v1/prompts/greeter/versions", json={"instructions": "Greet the user warmly.\nBe brief."})
    login(page, KEY_A)
    page.goto("/console#/conversations")
    page.get_by_role("link", name=conv["id"]).click()
    expect(page.get_by_text("Now make it three days").first).to_be_visible()
    expect(page.get_by_test_id("response-row")).to_have_count(2)
    shot(page, "conversation")
    page.goto("/console#/prompts")
    page.get_by_role("link", name="greeter").click()
    diff = page.get_by_test_id("diff")
    expect(diff.locator(".del")).to_contain_text("Greet the user.")
    expect(diff.locator(".add")).to_contain_text("Greet the user warmly.")
    assert not page.console_errors


def test_console_switched_off(tmp_path: Path) -> None:
    from responsa.api.app import create_app
    from responsa.config import load_settings
    from tests.helpers import serve_in_thread

    settings = load_settings(None, database_url=f"sqlite:///{tmp_path / 'off.db'}", default_model="test/echo",
                             console=False)
    with serve_in_thread(create_app(settings), lifespan="on") as url:
        for path in ("/console", "/console/app.js"):
            r = httpx.get(url + path)
            assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
        assert httpx.get(url + "/v1/responses").status_code == 200  # the API itself stays
