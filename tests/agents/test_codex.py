"""The real Codex CLI against Responsa, end to end (``codex exec`` and
``codex exec resume``), with three kinds of model behind it: the scripted
test model, a Chat Completions upstream (the fake) and the embedded model.

Codex sends ``store: false`` and replays the whole history itself, so the
chain a resumed session stands on is what Codex sends back: the recording
proxy between Codex and Responsa checks it item by item (the first turn's
prompt, the call, its output and the answer, in order, with the same call
id), and Responsa keeps nothing (the response id is a 404 afterwards).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from responsa.api.app import create_app
from responsa.config import ProviderConfig, load_settings
from tests.agents.codex import Codex, RecordingProxy, install, recording_proxy
from tests.fakes.openai_chat import FakeChat
from tests.helpers import serve_in_thread
from tests.tools.sdk_types import check_stream

pytestmark = pytest.mark.slow
Json = dict[str, Any]
MakeCodex = Callable[..., tuple[Codex, RecordingProxy]]


@pytest.fixture(scope="module")
def codex_binary() -> Path:
    return install()


@pytest.fixture(scope="module")
def responsa(chat_fake_server: tuple[FakeChat, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = load_settings(None, database_url=f"sqlite:///{tmp_path_factory.mktemp('codex')}/r.db",
                             default_model="test/echo")
    settings.providers["chat"] = ProviderConfig(name="chat", kind="chat-completions", base_url=chat_fake_server[1])
    # The 135M model rambles to its token cap (an incomplete response, which
    # Codex treats as a failed turn): the operator's stop sequence ends it.
    settings.providers["tiny"] = ProviderConfig(name="tiny", kind="local",
                                                options={"stop": ["\n", ". "], "seed": 1})
    with serve_in_thread(create_app(settings), lifespan="on") as url:
        yield url


@pytest.fixture
def codex_for(codex_binary: Path, responsa: str, tmp_path: Path) -> Iterator[MakeCodex]:
    with recording_proxy(responsa) as (proxy, url):
        def make(model: str, **kwargs: Any) -> tuple[Codex, RecordingProxy]:
            return Codex(codex_binary, tmp_path, url, model, **kwargs), proxy
        yield make


def _types(items: list[Json]) -> list[str]:
    return [f"{it.get('type', 'message')}:{it.get('role') or it.get('name') or ''}" for it in items]


def _check_exchanges(proxy: RecordingProxy) -> None:
    """Every request Responsa answered with a complete event stream, valid
    for the ``openai`` SDK and (where it describes it) the spec."""
    for exchange in proxy.responses:
        assert exchange.status == 200, exchange.events
        check_stream(exchange.events)
        assert exchange.terminal is not None and exchange.terminal["type"] == "response.completed"


def _check_first_request(body: Json) -> None:
    """What Codex sends on every turn, accepted as is."""
    assert body["store"] is False and body["stream"] is True
    assert body["include"] == ["reasoning.encrypted_content"]
    assert isinstance(body["client_metadata"], dict) and body["client_metadata"]
    assert {"function", "web_search"} <= {t["type"] for t in body["tools"]}


def _check_chain(proxy: RecordingProxy, prompt: str, marker: str) -> None:
    """The resumed turn carries turn one in order: the prompt, the shell
    call, its output (with the command's output) and the answer."""
    first_call = next(it for e in proxy.responses[0].events if e["type"] == "response.output_item.done"
                      for it in [e["item"]] if it["type"] == "function_call")
    resumed = proxy.responses[-1].body["input"]
    at: dict[str, int] = {}
    for i, it in enumerate(resumed):
        kind, role = it.get("type", "message"), it.get("role")
        if kind == "message" and role == "user" and prompt in json.dumps(it.get("content")):
            at.setdefault("prompt", i)
        elif kind == "function_call" and it["call_id"] == first_call["call_id"]:
            at.setdefault("call", i)
        elif kind == "function_call_output" and it["call_id"] == first_call["call_id"]:
            at.setdefault("output", i)
        elif kind == "message" and role == "assistant" and "output" in at:
            at.setdefault("answer", i)
    assert set(at) == {"prompt", "call", "output", "answer"}, _types(resumed)
    assert at["prompt"] < at["call"] < at["output"] < at["answer"], _types(resumed)
    assert marker in json.dumps(resumed[at["output"]]["output"])
    assert resumed[at["call"]]["name"] == "exec_command"


def _nothing_stored(responsa: str, proxy: RecordingProxy) -> None:
    with httpx.Client(base_url=responsa, headers={"authorization": "Bearer sk-responsa-test"}) as http:
        for exchange in proxy.responses:
            rid = exchange.events[0]["response"]["id"]
            assert http.get(f"/v1/responses/{rid}").status_code == 404


def test_test_model_runs_the_shell_then_answers_and_resumes(codex_for: MakeCodex,
                                                             responsa: str) -> None:
    codex, proxy = codex_for("test/echo")
    prompt = '[[call:exec_command {"cmd": "echo codex-was-here"}]] run it'
    run = codex.exec(prompt)
    assert run.returncode == 0, run.explain()
    assert "codex-was-here" in run.last_message, run.explain()
    assert len(proxy.responses) == 2, [x.body.get("input", [])[-1:] for x in proxy.responses]
    _check_first_request(proxy.responses[0].body)
    assert "namespace" in {t["type"] for t in proxy.responses[0].body["tools"]}
    _check_exchanges(proxy)

    again = codex.exec("[[no-call]] reply with exactly: second turn done", resume=run.thread_id)
    assert again.returncode == 0, again.explain()
    assert again.last_message.strip() == "second turn done"
    _check_chain(proxy, "codex-was-here", "codex-was-here")
    _check_exchanges(proxy)
    _nothing_stored(responsa, proxy)


def test_chat_completions_upstream(codex_for: MakeCodex, responsa: str,
                                   chat_fake_server: tuple[FakeChat, str]) -> None:
    fake = chat_fake_server[0]
    codex, proxy = codex_for("chat/fake-model")
    prompt = 'call-with:exec_command {"cmd": "echo via-chat-upstream"}'
    run = codex.exec(prompt)
    assert run.returncode == 0, run.explain()
    assert "via-chat-upstream" in run.last_message, run.explain()
    # The upstream saw plain function tools only: the namespace flattened, web_search kept server-side.
    sent = fake.requests[-2]
    assert all(t["type"] == "function" for t in sent["tools"]), [t["type"] for t in sent["tools"]]
    _check_exchanges(proxy)

    again = codex.exec("resume me", resume=run.thread_id)
    assert again.returncode == 0, again.explain()
    assert again.last_message.strip() == "You said: resume me"
    _check_chain(proxy, "via-chat-upstream", "via-chat-upstream")
    _nothing_stored(responsa, proxy)


def test_embedded_model(codex_for: MakeCodex, responsa: str,
                        tmp_path: Path) -> None:
    """The 135M model has an 8k window: Codex's own prompt is swapped for a
    short one and its optional tools are off, so the request fits; the
    shell tool is off too (a tiny model must not run commands)."""
    instructions = tmp_path / "instructions.md"
    instructions.write_text("You are a helpful assistant. Answer in one short sentence.")
    codex, proxy = codex_for(
        "tiny/smollm2", config=f'model_instructions_file = "{instructions}"\ninclude_environment_context = false\n'
                                 "include_apps_instructions = false\n[agents]\nenabled = false",
        features_off=("goals", "skill_search", "shell_tool", "unified_exec"))
    run = codex.exec("What is the capital of France?")
    assert run.returncode == 0, run.explain()
    assert run.last_message.strip(), run.explain()
    again = codex.exec("And of Spain?", resume=run.thread_id)
    assert again.returncode == 0, again.explain()
    assert again.last_message.strip()
    resumed = proxy.responses[-1].body["input"]
    texts = json.dumps(resumed)
    assert texts.index("capital of France") < texts.index(run.last_message.strip()[:20].replace('"', '\\"')) \
        < texts.index("And of Spain?")
    _check_exchanges(proxy)
    _nothing_stored(responsa, proxy)


def test_freeform_apply_patch_is_a_custom_tool_round_trip(codex_for: MakeCodex, responsa: str) -> None:
    """Described as a catalogued model, Codex sends its ``apply_patch`` as a
    ``custom`` tool with a Lark grammar (and ``tool_search``): the test
    model's call comes back as a ``custom_tool_call`` that Codex applies."""
    codex, proxy = codex_for("test/echo", like="gpt-5.5")
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hello from responsa\n*** End Patch\n"
    run = codex.exec("[[call:apply_patch " + json.dumps({"input": patch}) + "]] write the file")
    assert run.returncode == 0, run.explain()
    assert (codex.workdir / "hello.txt").read_text() == "hello from responsa\n"
    tools = {t["type"]: t for t in proxy.responses[0].body["tools"]}
    assert tools["custom"]["name"] == "apply_patch" and tools["custom"]["format"]["syntax"] == "lark"
    assert tools["tool_search"]["execution"] == "client"
    call = next(e["item"] for e in proxy.responses[0].events if e["type"] == "response.output_item.done"
                and e["item"]["type"] == "custom_tool_call")
    assert call["input"] == patch
    replayed = proxy.responses[1].body["input"]
    assert any(it.get("type") == "custom_tool_call_output" and it["call_id"] == call["call_id"] for it in replayed)
    _check_exchanges(proxy)
    _nothing_stored(responsa, proxy)


def test_codex_compaction(codex_for: MakeCodex, responsa: str) -> None:
    """Codex compacts on its own when the context passes its limit (here a
    tiny one): against a non-OpenAI provider it asks the model for a handoff
    summary (a plain request, ``request_kind: compaction``) and continues in
    a new window from it. Both go through Responsa like any turn."""
    codex, proxy = codex_for("test/echo", config="model_auto_compact_token_limit = 2000")
    run = codex.exec("[[no-call]] reply with exactly: first")
    assert run.returncode == 0, run.explain()
    again = codex.exec("[[no-call]] reply with exactly: after compaction", resume=run.thread_id)
    assert again.returncode == 0, again.explain()
    assert again.last_message.strip() == "after compaction"
    kinds = [json.loads(x.headers["x-codex-turn-metadata"])["request_kind"] for x in proxy.responses]
    assert kinds == ["turn", "compaction", "turn"], kinds
    summary = proxy.responses[1].events[-1]["response"]["output"][0]["content"][0]["text"]
    assert summary.startswith("You are performing a CONTEXT CHECKPOINT COMPACTION")  # the test model echoes
    assert "CONTEXT CHECKPOINT COMPACTION" in json.dumps(proxy.responses[2].body["input"])
    _check_exchanges(proxy)
