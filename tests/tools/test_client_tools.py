"""Client-executed tool types round-trip for every provider family.

For each of ``shell``, ``local_shell``, ``apply_patch``, ``custom`` and
``namespace``, and each of the test model, the Chat Completions fake, the
OpenAI Responses fake and the Anthropic fake: the model's call comes back
as the native item (``shell_call``...), the client's ``*_output`` item goes
back with ``previous_response_id`` and reaches the model (its answer quotes
the output), and every event and object is valid for the ``openai`` SDK and,
where the spec describes it, for the Open Responses spec. Chains with
``store: false`` (the client replays items, encrypted reasoning included)
and conversations are checked on the test model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from responsa.api.app import create_app
from responsa.config import ProviderConfig, load_settings
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai_chat import FakeChat
from tests.fakes.openai_responses import FakeResponses
from tests.helpers import parse_sse, serve_in_thread
from tests.tools.sdk_types import check_response, check_stream

Json = dict[str, Any]


@dataclass(frozen=True)
class Case:
    name: str
    tools: list[Json]
    function: str
    """The function name the model sees and calls."""
    arguments: Json
    item_type: str
    expect: Json
    """Fields the native call item must have."""
    marker: str
    choice: Json | None = None
    """``tool_choice`` that forces this tool (the embedded model is driven by it)."""

    def output(self, call: Json) -> Json:
        cid = call.get("call_id")
        return {
            "shell_call": {"type": "shell_call_output", "call_id": cid, "output": [
                {"stdout": f"{self.marker}\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]},
            "local_shell_call": {"type": "local_shell_call_output", "id": cid, "output": self.marker},
            "apply_patch_call": {"type": "apply_patch_call_output", "call_id": cid, "status": "completed",
                                 "output": self.marker},
            "custom_tool_call": {"type": "custom_tool_call_output", "call_id": cid, "output": self.marker},
            "function_call": {"type": "function_call_output", "call_id": cid, "output": self.marker},
            "tool_search_call": {"type": "tool_search_output", "call_id": cid, "execution": "client",
                                 "status": "completed", "tools": [FOUND]},
            "computer_call": {"type": "computer_call_output", "call_id": cid,
                              "output": {"type": "computer_screenshot", "image_url": PNG}},
        }[self.item_type]


FOUND = {"type": "function", "name": "lookup_customer", "description": "Find a customer by id.",
         "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVO"
       "RK5CYII=")
CASES = [
    Case("shell", [{"type": "shell", "environment": {"type": "local"}}], "shell", {"commands": ["echo hi"]},
         "shell_call", {"action": {"commands": ["echo hi"], "timeout_ms": None, "max_output_length": None}},
         "shell-said-hi", {"type": "shell"}),
    Case("local_shell", [{"type": "local_shell"}], "local_shell", {"command": ["echo", "hi"]}, "local_shell_call",
         {"action": {"type": "exec", "command": ["echo", "hi"], "env": {}}}, "local-said-hi",
         {"type": "function", "name": "local_shell"}),
    Case("apply_patch", [{"type": "apply_patch"}], "apply_patch",
         {"operation": {"type": "create_file", "path": "a.txt", "diff": "+hello\n"}}, "apply_patch_call",
         {"operation": {"type": "create_file", "path": "a.txt", "diff": "+hello\n"}}, "patch-applied",
         {"type": "apply_patch"}),
    Case("custom", [{"type": "custom", "name": "run_sql", "description": "Run one SQL query.",
                     "format": {"type": "grammar", "syntax": "regex", "definition": "SELECT .+"}}],
         "run_sql", {"input": "SELECT 1"}, "custom_tool_call", {"name": "run_sql", "input": "SELECT 1"}, "one-row",
         {"type": "custom", "name": "run_sql"}),
    Case("namespace", [{"type": "namespace", "name": "crm", "description": "Customer records.", "tools": [
        {"type": "function", "name": "lookup", "description": "Find a customer.", "strict": False,
         "parameters": {"type": "object", "properties": {"id": {"type": "string", "maxLength": 8}},
                        "required": ["id"]}}]}],
         "crm__lookup", {"id": "42"}, "function_call", {"name": "lookup", "namespace": "crm", "arguments":
                                                        '{"id":"42"}'}, "customer-42",
         {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "crm__lookup"}]}),
]
CASES += [
    Case("tool_search", [{"type": "tool_search", "execution": "client", "description": "Find more tools."}],
         "tool_search", {"query": "customer"}, "tool_search_call",
         {"arguments": {"query": "customer"}, "execution": "client"}, "lookup_customer",
         {"type": "function", "name": "tool_search"}),
    Case("computer", [{"type": "computer_use_preview", "display_width": 1024, "display_height": 768,
                       "environment": "browser"}], "computer", {"action": {"type": "click", "x": 3, "y": 4}},
         "computer_call", {"action": {"type": "click", "button": "left", "x": 3, "y": 4}}, "",
         {"type": "computer_use_preview"}),
]
MODELS = ["test/echo", "chat/fake-model", "native/gpt-fake", "claude/claude-sonnet-4-5"]


@pytest.fixture(scope="module")
def http(fake_providers: dict[str, ProviderConfig],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = load_settings(None, database_url=f"sqlite:///{tmp_path_factory.mktemp('ct')}/r.db",
                             default_model="test/echo")
    settings.providers.update(fake_providers)
    with serve_in_thread(create_app(settings), lifespan="on") as url, \
            httpx.Client(base_url=url, headers={"authorization": "Bearer k"}, timeout=60) as c:
        yield c


def script(model: str, function: str, args: Json) -> str:
    encoded = json.dumps(args, separators=(",", ":"))
    if model.startswith("test/"):
        return f"[[call:{function} {encoded}]] please"
    return f"call-with:{function} {encoded}"


def create(http: httpx.Client, body: Json, *, ok: tuple[str, ...] = ("completed",)) -> Json:
    """A streamed create: every event checked, the final Response returned."""
    r = http.post("/v1/responses", json={**body, "stream": True})
    assert r.status_code == 200, r.text
    events, done = parse_sse(r.content)
    assert done
    check_stream(events)
    final: Json = events[-1]["response"]
    assert final["status"] in ok, (final.get("error"), final.get("incomplete_details"))
    check_response(final)
    return final


def text_of(resp: Json) -> str:
    return "".join(p.get("text", "") for it in resp["output"] if it["type"] == "message" for p in it["content"])


def the_call(resp: Json, case: Case) -> Json:
    calls = [it for it in resp["output"] if it["type"] == case.item_type]
    assert len(calls) == 1, [it["type"] for it in resp["output"]]
    call = calls[0]
    for key, value in case.expect.items():
        got = json.loads(call[key]) if isinstance(call[key], str) and key == "arguments" else call[key]
        assert got == (json.loads(value) if isinstance(value, str) and key == "arguments" else value), (key, call)
    return call


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_round_trip_with_previous_response_id(http: httpx.Client, case: Case, model: str) -> None:
    first = create(http, {"model": model, "input": script(model, case.function, case.arguments), "tools": case.tools})
    call = the_call(first, case)
    assert first["tools"][0]["type"] == case.tools[0]["type"]
    second = create(http, {"model": model, "previous_response_id": first["id"], "tools": case.tools,
                           "input": [case.output(call)]})
    assert case.marker in text_of(second), second["output"]  # (a screenshot has no text to quote)
    items = http.get(f"/v1/responses/{second['id']}/input_items").json()["data"]
    assert items[0]["type"] == case.output(call)["type"]


def test_upstreams_see_plain_functions(http: httpx.Client, chat_fake_server: tuple[FakeChat, str],
                                       responses_fake_server: tuple[FakeResponses, str],
                                       anthropic_fake_server: FakeAnthropic) -> None:
    tools = [t for case in CASES for t in case.tools]
    names = {"shell", "local_shell", "apply_patch", "run_sql", "crm__lookup", "tool_search", "computer"}
    create(http, {"model": "chat/fake-model", "input": "hello", "tools": tools})
    assert {t["function"]["name"] for t in chat_fake_server[0].last["tools"]} == names
    create(http, {"model": "claude/claude-sonnet-4-5", "input": "hello", "tools": tools})
    assert {t["name"] for t in anthropic_fake_server.last["tools"]} == names
    create(http, {"model": "native/gpt-fake", "input": "hello", "tools": tools})
    assert {t["name"] for t in responses_fake_server[0].last["tools"]} >= names


def test_store_false_replay_with_encrypted_reasoning(http: httpx.Client) -> None:
    case = CASES[0]
    prompt = "[[reasoning:plan it]] " + script("test/echo", case.function, case.arguments)
    first = create(http, {"model": "test/echo", "input": prompt, "tools": case.tools, "store": False,
                          "include": ["reasoning.encrypted_content"]})
    reasoning = next(it for it in first["output"] if it["type"] == "reasoning")
    assert reasoning["encrypted_content"] == "test:plan it"
    call = the_call(first, case)
    replay = [{"role": "user", "content": prompt}, *first["output"], case.output(call)]
    second = create(http, {"model": "test/echo", "input": replay, "tools": case.tools, "store": False})
    assert case.marker in text_of(second)
    assert http.get(f"/v1/responses/{first['id']}").status_code == 404


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_conversation(http: httpx.Client, case: Case) -> None:
    conv = http.post("/v1/conversations", json={}).json()["id"]
    first = create(http, {"model": "test/echo", "conversation": conv, "tools": case.tools,
                          "input": script("test/echo", case.function, case.arguments)})
    call = the_call(first, case)
    second = create(http, {"model": "test/echo", "conversation": conv, "tools": case.tools,
                           "input": [case.output(call)]})
    assert case.marker in text_of(second)
    kinds = [it["type"] for it in http.get(f"/v1/conversations/{conv}/items", params={"order": "asc"}).json()["data"]]
    assert kinds == ["message", case.item_type, case.output(call)["type"], "message"], kinds


def test_history_without_the_tool_still_reaches_the_model(http: httpx.Client) -> None:
    """A later turn that no longer offers the tool still shows the model the
    earlier call and its output (as a function call and output)."""
    case = CASES[0]
    first = create(http, {"model": "test/echo", "input": script("test/echo", case.function, case.arguments),
                          "tools": case.tools})
    call = the_call(first, case)
    second = create(http, {"model": "test/echo", "previous_response_id": first["id"],
                           "input": [case.output(call), {"role": "user", "content": "[[history]]"}]})
    assert "user:" in text_of(second)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_chat_upstream_sees_the_history_of_a_tool_no_longer_offered(
        http: httpx.Client, chat_fake_server: tuple[FakeChat, str], case: Case) -> None:
    """The tool's native items, far back in a long history, reach a Chat
    Completions upstream as the call and output it understands (each tool
    type's model view runs whenever its items are in the context)."""
    first = create(http, {"model": "test/echo", "input": script("test/echo", case.function, case.arguments),
                          "tools": case.tools})
    call = the_call(first, case)
    previous = create(http, {"model": "test/echo", "previous_response_id": first["id"], "tools": case.tools,
                             "input": [case.output(call)]})["id"]
    for n in range(20):
        previous = create(http, {"model": "test/echo", "previous_response_id": previous, "input": f"turn {n}"})["id"]
    create(http, {"model": "chat/fake-model", "previous_response_id": previous, "input": "and now?"})
    messages = chat_fake_server[0].last["messages"]
    calls = [c for m in messages for c in m.get("tool_calls") or []]
    assert [c["function"]["name"] for c in calls] == [case.function], messages[:4]
    assert [m["tool_call_id"] for m in messages if m["role"] == "tool"] == [calls[0]["id"]]
    assert messages[-1] == {"role": "user", "content": "and now?"}


@pytest.mark.parametrize(("tools", "param"), [
    ([{"type": "shell", "environment": {"type": "container_auto"}}], "tools[0].environment.type"),
    ([{"type": "shell", "frobnicate": 1}], "tools[0].frobnicate"),
    ([{"type": "custom", "name": "bad name"}], "tools[0].name"),
    ([{"type": "custom", "name": "c", "format": {"type": "grammar", "syntax": "ebnf", "definition": "x"}}],
     "tools[0].format.syntax"),
    ([{"type": "namespace", "name": "ns", "tools": []}], "tools[0].tools"),
    ([{"type": "namespace", "name": "ns", "tools": [{"type": "shell"}]}], "tools[0].tools[0].type"),
    ([{"type": "apply_patch"}, {"type": "function", "name": "apply_patch"}], "tools"),
])
def test_invalid_tools_are_400s_naming_them(http: httpx.Client, tools: list[Json], param: str) -> None:
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "x", "tools": tools})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


@pytest.mark.parametrize(("item", "param"), [
    ({"type": "shell_call_output", "call_id": "c", "output": "not a list"}, "input[0].output[0]"),
    ({"type": "apply_patch_call_output", "call_id": "c", "status": "maybe"}, "input[0].status"),
    ({"type": "custom_tool_call", "call_id": "c", "name": "x"}, "input[0].input"),
])
def test_invalid_native_items_are_400s_naming_the_path(http: httpx.Client, item: Json, param: str) -> None:
    r = http.post("/v1/responses", json={"model": "test/echo", "input": [item]})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_embedded_model_round_trip(http: httpx.Client, case: Case) -> None:
    """The embedded model, forced by ``tool_choice`` written the native way
    (``{"type": "shell"}``...): its grammar-constrained call becomes the
    native item, and it answers once the output comes back."""
    first = create(http, {"model": "local/smollm2", "input": "Use the tool.", "tools": case.tools,
                          "tool_choice": case.choice, "max_output_tokens": 400, "temperature": 0})
    assert first["tool_choice"] == case.choice
    call = next(it for it in first["output"] if it["type"] == case.item_type)
    second = create(http, {"model": "local/smollm2", "previous_response_id": first["id"], "tools": case.tools,
                           "input": [case.output(call)], "max_output_tokens": 24, "temperature": 0,
                           "tool_choice": "none"}, ok=("completed", "incomplete"))
    assert any(it["type"] == "message" for it in second["output"])


def test_hosted_tools_pass_through_to_a_responses_upstream(http: httpx.Client,
                                                           responses_fake_server: tuple[FakeResponses, str]) -> None:
    fake = responses_fake_server[0]
    tools = [{"type": "image_generation", "quality": "low"}]
    first = create(http, {"model": "native/gpt-fake", "input": "draw", "tools": tools})
    assert fake.last["tools"] == tools
    image = first["output"][0]
    assert image == {"id": "ig_fake", "type": "image_generation_call", "status": "completed", "result": "aW1hZ2U="}
    create(http, {"model": "native/gpt-fake", "previous_response_id": first["id"], "input": "thanks", "tools": tools})
    assert image in fake.last["input"]


@pytest.mark.parametrize("model", ["test/echo", "chat/fake-model", "claude/claude-sonnet-4-5"])
@pytest.mark.parametrize("tool", [{"type": "image_generation"},
                                  {"type": "code_interpreter", "container": {"type": "auto"}}])
def test_hosted_tools_elsewhere_are_400s_saying_why(http: httpx.Client, model: str, tool: Json) -> None:
    r = http.post("/v1/responses", json={"model": model, "input": "x", "tools": [tool]})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "tools[0].type" and "openai-responses" in error["message"]


def test_tools_a_tool_search_found_become_callable(http: httpx.Client) -> None:
    case = next(c for c in CASES if c.name == "tool_search")
    first = create(http, {"model": "test/echo", "input": script("test/echo", case.function, case.arguments),
                          "tools": case.tools})
    second = create(http, {"model": "test/echo", "previous_response_id": first["id"], "tools": case.tools,
                           "input": [case.output(the_call(first, case))]})
    third = create(http, {"model": "test/echo", "previous_response_id": second["id"], "tools": case.tools,
                          "input": script("test/echo", "lookup_customer", {"id": "7"})})
    call = next(it for it in third["output"] if it["type"] == "function_call")
    assert call["name"] == "lookup_customer" and json.loads(call["arguments"]) == {"id": "7"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_replay_equals_live(http: httpx.Client, case: Case) -> None:
    """``GET ?stream=true`` replays a stored response with the native items
    exactly as the live stream sent them."""
    r = http.post("/v1/responses", json={"model": "test/echo", "input": script("test/echo", case.function,
                                                                              case.arguments),
                                         "tools": case.tools, "stream": True})
    live, _ = parse_sse(r.content)
    replay, _ = parse_sse(http.get(f"/v1/responses/{live[-1]['response']['id']}", params={"stream": "true"}).content)
    check_stream(replay)

    def strip(events: list[Json]) -> list[Json]:
        return [{k: v for k, v in e.items() if k not in ("sequence_number", "obfuscation")} for e in events]

    assert strip(replay) == strip(live)
