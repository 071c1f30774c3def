"""The reference client (``dedalus_labs``) and Responsa's own client work
unchanged against the server."""

from __future__ import annotations

import inspect

import pytest
from dedalus_labs import Dedalus
from dedalus_labs.resources.responses import ResponsesResource as DedalusResponses

from responsa import AsyncResponsa, Responsa
from responsa.client import APIStatusError
from tests.helpers import validate_event, validate_response


def test_dedalus_create_chain_and_extras(server: str) -> None:
    d = Dedalus(api_key="dedalus-key", base_url=server, max_retries=0)
    r = d.responses.create(model="test/echo", input="What is the capital of France?",
                           instructions="You are a helpful geography assistant.", temperature=0.7)
    assert r.status == "completed"
    assert r.output[0]["content"][0]["text"] == "What is the capital of France?"
    assert r.created_at > 0 and getattr(r, "created", None) == int(r.created_at)
    assert getattr(r, "conversation_id", "missing") is None
    r2 = d.responses.create(model="test/echo", input="[[history]]", previous_response_id=r.id)
    assert r2.output[0]["content"][0]["text"].startswith("user: What is the capital of France?")


def test_dedalus_model_settings_form(server: str) -> None:
    d = Dedalus(api_key="dedalus-key", base_url=server, max_retries=0)
    r = d.responses.create(model={"model": "test/echo", "settings": {"seed": 1}}, input="hello")  # type: ignore[arg-type]
    assert r.model == "test/echo" and r.status == "completed"


def test_dedalus_stream_returns_sse(server: str) -> None:
    d = Dedalus(api_key="dedalus-key", base_url=server, max_retries=0)
    stream = d.responses.create(model="test/echo", input="streamed words", stream=True)
    text = stream if isinstance(stream, str) else str(stream)
    assert "response.completed" in text


def test_client_signature_matches_reference() -> None:
    ours = inspect.signature(Responsa(base_url="http://x").responses.create)
    ref = inspect.signature(DedalusResponses.create)
    transport = {"extra_headers", "extra_query", "extra_body", "timeout", "idempotency_key", "self"}
    assert [p for p in ours.parameters if p != "self"] == [p for p in ref.parameters if p not in transport]
    assert len([p for p in ours.parameters if p != "self"]) == 31
    assert inspect.signature(AsyncResponsa(base_url="http://x").responses.create).parameters == ours.parameters
    with pytest.raises(TypeError, match="nonsense"):
        Responsa(base_url="http://x").responses.create(model="m", input="x", nonsense=1)  # type: ignore[call-overload]


def test_responsa_client_sync(server: str) -> None:
    with Responsa(api_key="client-key", base_url=f"{server}/v1") as c:
        r = c.responses.create(model="test/echo", input="hi", metadata={"k": "v"})
        validate_response(r.model_dump())
        assert r.output_text == "hi" and r.created and r.conversation_id is None
        events = list(c.responses.create(model="test/echo", input="a b c", stream=True))
        for ev in events:
            validate_event(ev.model_dump(exclude_unset=True))
        assert events[-1].type == "response.completed" and events[-1].response is not None
        assert c.responses.retrieve(r.id).output_text == "hi"
        assert c.responses.input_items.list(r.id).data[0]["content"][0]["text"] == "hi"
        assert c.responses.delete(r.id).deleted
        with pytest.raises(APIStatusError) as info:
            c.responses.retrieve(r.id)
        assert info.value.status_code == 404


async def test_responsa_client_async(server: str) -> None:
    async with AsyncResponsa(api_key="client-key", base_url=server) as c:
        r = await c.responses.create(model="test/echo", input="async hi")
        assert r.output_text == "async hi"
        stream = await c.responses.create(model="test/echo", input="x y", stream=True)
        kinds = [ev.type async for ev in stream]
        assert kinds[-1] == "response.completed"
        with pytest.raises(APIStatusError) as info:
            await c.responses.create(model="test/echo", input="x", temperature=9)
        assert info.value.param == "temperature"
