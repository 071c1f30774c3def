"""The Vercel AI SDK (``ai`` 7 + ``@ai-sdk/openai`` 4, from npm) against
Responsa, unchanged but for ``baseURL``: ``generateText`` and ``streamText``
through the Responses front door (``.responses()``), a tool round trip run by
the SDK itself (``tool()`` + ``stopWhen``), streamed and not, multi-turn
history the SDK replays as ``item_reference`` ids of stored items, a
``previousResponseId`` chain, structured output, reasoning summaries, an
error status and a mid-stream failure as the SDK reports them, and
``generateText`` and a streamed tool round trip through the Chat
Completions front door (``.chat()``).

One node process runs every scenario (``ai_sdk.mjs``) behind the recording
proxy of the Codex tests, so the tests assert both what the SDK returned to
its caller and what it sent on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agents.ai_sdk import install, run
from tests.agents.codex import RecordingProxy, recording_proxy

pytestmark = pytest.mark.slow
Json = dict[str, Any]


@pytest.fixture(scope="module")
def sdk_modules() -> Path:
    return install()


@pytest.fixture(scope="module")
def sdk(sdk_modules: Path, server: str) -> Iterator[tuple[Json, RecordingProxy]]:
    with recording_proxy(server) as (proxy, url):
        yield run(sdk_modules, f"{url}/v1"), proxy


def scenario(sdk: tuple[Json, RecordingProxy], name: str) -> Json:
    result: Json = sdk[0][name]
    assert result["ok"], f"the AI SDK failed in {name!r}:\n{result['error']}\n{result['data']}"
    return result


def test_generate_text_through_responses(sdk: tuple[Json, RecordingProxy]) -> None:
    result = scenario(sdk, "generate")
    assert result["text"] == "Hello from the AI SDK"
    assert result["finishReason"] == "stop"
    assert result["model"] == "test/echo"
    assert result["responseId"].startswith("resp_")
    assert result["usage"]["inputTokens"] > 0 and result["usage"]["outputTokens"] > 0


def test_stream_text_through_responses(sdk: tuple[Json, RecordingProxy]) -> None:
    result = scenario(sdk, "stream")
    assert result["chunks"] == ["Streaming ", "through ", "Responsa ", "works"]  # deltas, not one blob
    assert result["text"] == "Streaming through Responsa works"
    assert result["finishReason"] == "stop"
    assert result["parts"][0] == "start" and result["parts"][-2:] == ["finish-step", "finish"]
    assert result["usage"]["outputTokens"] == 4


@pytest.mark.parametrize(("name", "city"), [("tools", "Paris"), ("streamTools", "Oslo"), ("toolsStoreFalse", "Rome")])
def test_tool_round_trip(sdk: tuple[Json, RecordingProxy], name: str, city: str) -> None:
    """The SDK runs the tool the model called and sends its result back; the
    model's final answer is built from that result."""
    result = scenario(sdk, name)
    assert result["calls"] == [city]
    assert (result["steps"], result["finishReason"]) == (2, "stop")
    assert result["text"] == f'The weather tool returned: {{"city":"{city}","forecast":"sunny, 21C"}}'
    if name == "streamTools":
        assert result["parts"].index("tool-call") < result["parts"].index("tool-result") \
            < result["parts"].index("text-delta")
    second = next(x for x in sdk[1].responses
                  if any(i.get("type") == "function_call_output" and city in str(i.get("output"))
                         for i in x.body["input"]))
    call = next(i for i in second.body["input"] if i.get("type") == "function_call")
    output = next(i for i in second.body["input"] if i.get("type") == "function_call_output")
    assert call["name"] == "weather" and output["call_id"] == call["call_id"]
    assert second.status == 200
    assert second.body.get("store", True) is (name != "toolsStoreFalse")


def test_multi_turn_replays_stored_items_by_reference(sdk: tuple[Json, RecordingProxy]) -> None:
    result = scenario(sdk, "multiTurn")
    assert result["text"] == "user: The first turn | assistant: The first turn | user: the second turn"
    second = next(x for x in sdk[1].responses if "[[history]] the second turn" in str(x.body["input"]))
    assert any(i.get("type") == "item_reference" for i in second.body["input"]), second.body["input"]


def test_previous_response_id_chains_turns(sdk: tuple[Json, RecordingProxy]) -> None:
    result = scenario(sdk, "previousResponse")
    assert result["text"] == ("user: Remember the word kiwi | assistant: Remember the word kiwi"
                              " | user: what was the word?")


def test_structured_output(sdk: tuple[Json, RecordingProxy]) -> None:
    assert scenario(sdk, "structured")["output"] == {"city": "test", "population": 1}


def test_generate_text_through_chat_completions(sdk: tuple[Json, RecordingProxy]) -> None:
    result = scenario(sdk, "chat")
    assert result["text"] == "Hello through Chat Completions"
    assert result["finishReason"] == "stop"
    assert result["model"] == "test/echo"
    assert any(x.path == "chat/completions" and x.status == 200 for x in sdk[1].exchanges)


def test_reasoning_summary_streams_as_reasoning(sdk: tuple[Json, RecordingProxy]) -> None:
    result = scenario(sdk, "reasoning")
    assert result == {"ok": True, "text": "the answer", "reasoning": "think it through"}


def test_error_reaches_the_sdk_with_its_status(sdk: tuple[Json, RecordingProxy]) -> None:
    result = scenario(sdk, "error")
    assert (result["name"], result["status"], result["retryable"]) == ("AI_APICallError", 429, True)
    assert result["message"] == "Scripted upstream failure (429)."


def test_mid_stream_failure_is_the_streams_error_part(sdk: tuple[Json, RecordingProxy]) -> None:
    parts = scenario(sdk, "streamError")["parts"]
    assert parts.count("text-delta") == 2
    assert "error: Scripted upstream failure mid-stream." in parts


def test_tool_round_trip_through_chat_completions(sdk: tuple[Json, RecordingProxy]) -> None:
    result = scenario(sdk, "chatStreamTools")
    assert result["calls"] == ["Lima"]
    assert (result["steps"], result["finishReason"]) == (2, "stop")
    assert result["text"] == 'The weather tool returned: {"city":"Lima","forecast":"sunny, 21C"}'
