from __future__ import annotations

from openai import OpenAI

from tests.helpers import parse_sse, validate_response, validate_stream


def test_create_and_stream_validate(client: OpenAI, http) -> None:  # type: ignore[no-untyped-def]
    r = client.responses.create(model="test/echo", input="What is the capital of France?",
                                instructions="You are a helpful geography assistant.", temperature=0.7)
    validate_response(r.model_dump(mode="json", exclude_unset=True))
    assert r.output_text == "What is the capital of France?"
    raw = http.post("/v1/responses", json={"model": "test/echo", "input": "hi there", "stream": True})
    events, done = parse_sse(raw.content)
    assert done
    validate_stream(events)
