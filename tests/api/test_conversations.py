"""Conversations end to end: the ``openai`` SDK's ``client.conversations``
against a real server, and ``responses.create(conversation=...)`` reading
and appending the conversation's items."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from tests.helpers import parse_sse, validate_response, validate_stream


def _text(item: Any) -> str:
    return "".join(getattr(p, "text", "") for p in item.content)


def _dump(r: Any) -> dict[str, Any]:
    data: dict[str, Any] = r.model_dump(mode="json", exclude_unset=True)
    validate_response(data)
    return data


def _all_items(client: OpenAI, conversation_id: str) -> list[Any]:
    return list(client.conversations.items.list(conversation_id, order="asc", limit=100))


def test_conversation_crud(client: OpenAI) -> None:
    conv = client.conversations.create(items=[{"role": "user", "content": "first"},
                                              {"type": "message", "role": "assistant", "content": "second"}],
                                       metadata={"topic": "crud"})
    assert conv.id.startswith("conv_") and conv.object == "conversation"
    assert conv.metadata == {"topic": "crud"} and isinstance(conv.created_at, int)
    assert client.conversations.retrieve(conv.id).model_dump() == conv.model_dump()

    updated = client.conversations.update(conv.id, metadata={"topic": "changed", "k": "v"})
    assert updated.metadata == {"topic": "changed", "k": "v"}
    assert client.conversations.retrieve(conv.id).metadata == {"topic": "changed", "k": "v"}

    added = client.conversations.items.create(conv.id, items=[{"role": "user", "content": f"n{i}"}
                                                              for i in range(3)])
    assert added.object == "list" and [_text(it) for it in added.data] == ["n0", "n1", "n2"]
    assert added.first_id == added.data[0].id and added.last_id == added.data[-1].id

    texts = [_text(it) for it in _all_items(client, conv.id)]
    assert texts == ["first", "second", "n0", "n1", "n2"]
    # Default order is newest first; pages of 2 follow the cursor to the end.
    page = client.conversations.items.list(conv.id, limit=2)
    assert [_text(it) for it in page.data] == ["n2", "n1"] and page.has_more
    assert [_text(it) for it in page] == ["n2", "n1", "n0", "second", "first"]
    asc = client.conversations.items.list(conv.id, limit=2, order="asc", after=added.data[0].id,
                                          include=["message.output_text.logprobs"])
    assert [_text(it) for it in asc.data] == ["n1", "n2"] and asc.has_more is False

    first = added.data[0]
    got = client.conversations.items.retrieve(first.id, conversation_id=conv.id)
    assert got.id == first.id and _text(got) == "n0"
    after_delete = client.conversations.items.delete(first.id, conversation_id=conv.id)
    assert after_delete.id == conv.id and after_delete.object == "conversation"
    assert [_text(it) for it in _all_items(client, conv.id)] == ["first", "second", "n1", "n2"]
    with pytest.raises(NotFoundError):
        client.conversations.items.retrieve(first.id, conversation_id=conv.id)
    with pytest.raises(NotFoundError):
        client.conversations.items.delete(first.id, conversation_id=conv.id)

    deleted = client.conversations.delete(conv.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (conv.id, "conversation.deleted", True)
    with pytest.raises(NotFoundError):
        client.conversations.retrieve(conv.id)
    with pytest.raises(NotFoundError):
        client.conversations.delete(conv.id)


def test_responses_read_and_append(client: OpenAI) -> None:
    conv = client.conversations.create(items=[{"role": "user", "content": "My name is Ada."}])
    r1 = client.responses.create(model="test/echo", conversation=conv.id, input="[[history]] who am I?")
    d1 = _dump(r1)
    assert r1.output_text == "user: My name is Ada. | user: who am I?"
    assert d1["conversation"] == {"id": conv.id} and d1["conversation_id"] == conv.id

    items = _all_items(client, conv.id)
    assert [(it.role, _text(it)) for it in items] == [
        ("user", "My name is Ada."), ("user", "[[history]] who am I?"), ("assistant", r1.output_text)]
    assert items[1].id == client.responses.input_items.list(r1.id).data[0].id
    assert items[2].id == r1.output[0].id

    # The object form, a second turn: the first turn's output is context now.
    r2 = client.responses.create(model="test/echo", conversation={"id": conv.id}, input="[[history]] again")
    _dump(r2)
    assert r2.output_text == f"user: My name is Ada. | user: who am I? | assistant: {r1.output_text} | user: again"
    assert len(_all_items(client, conv.id)) == 5


def test_store_false_still_appends(client: OpenAI) -> None:
    """As on OpenAI, ``store=false`` keeps the response itself out of the
    store, but the conversation the client named still gets the turn."""
    conv = client.conversations.create()
    r = client.responses.create(model="test/echo", conversation=conv.id, input="ephemeral", store=False)
    _dump(r)
    assert r.store is False and r.conversation is not None and r.conversation.id == conv.id
    with pytest.raises(NotFoundError):
        client.responses.retrieve(r.id)
    assert [(it.role, _text(it)) for it in _all_items(client, conv.id)] == [("user", "ephemeral"),
                                                                              ("assistant", "ephemeral")]


def test_failed_and_streamed_turns(client: OpenAI, http: httpx.Client) -> None:
    conv = client.conversations.create()
    failed = http.post("/v1/responses", json={"model": "test/echo", "conversation": conv.id, "input": "[[error]]"})
    assert failed.status_code == 502
    midway = http.post("/v1/responses", json={"model": "test/echo", "conversation": conv.id, "stream": True,
                                              "input": "[[long:5]] [[fail-after:2]]"})
    events, _ = parse_sse(midway.content)
    assert events[-1]["type"] == "response.failed"
    assert _all_items(client, conv.id) == [], "a failed turn appends nothing"

    ok = http.post("/v1/responses", json={"model": "test/echo", "conversation": conv.id, "stream": True,
                                          "input": "streamed"})
    events, done = parse_sse(ok.content)
    assert done
    validate_stream(events)
    assert all(ev["response"]["conversation"] == {"id": conv.id} for ev in events if "response" in ev)
    assert [_text(it) for it in _all_items(client, conv.id)] == ["streamed", "streamed"]

    cut = client.responses.create(model="test/echo", conversation=conv.id, input="[[long:50]]",
                                  max_output_tokens=16)
    assert cut.status == "incomplete"
    assert len(_all_items(client, conv.id)) == 4, "an incomplete turn is appended"


def test_concurrent_turns_never_interleave(client: OpenAI) -> None:
    conv = client.conversations.create()
    errors: list[BaseException] = []

    def turn(i: int) -> None:
        try:
            client.responses.create(model="test/echo", conversation=conv.id, input=f"turn {i} [[delay:5]]")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    items = _all_items(client, conv.id)
    assert len(items) == 16
    seen = set()
    for question, answer in zip(items[::2], items[1::2], strict=True):
        assert question.role == "user" and answer.role == "assistant"
        n = _text(question).split()[1]
        assert _text(answer) == f"turn {n}", "each input is immediately followed by its own output"
        seen.add(n)
    assert seen == {str(i) for i in range(8)}


def test_errors(client: OpenAI, server: str) -> None:
    with pytest.raises(NotFoundError) as nf:
        client.responses.create(model="test/echo", conversation="conv_missing", input="hi")
    assert nf.value.body["code"] == "conversation_not_found" and nf.value.body["param"] == "conversation"

    conv = client.conversations.create()
    prev = client.responses.create(model="test/echo", input="hi")
    with pytest.raises(BadRequestError) as both:
        client.responses.create(model="test/echo", conversation=conv.id, previous_response_id=prev.id, input="x")
    assert both.value.body["param"] == "conversation"
    with pytest.raises(BadRequestError) as bad_form:
        client.responses.create(model="test/echo", conversation={"name": "x"}, input="x")  # type: ignore[typeddict-unknown-key]
    assert bad_form.value.body["param"] == "conversation"

    with pytest.raises(BadRequestError) as too_many:
        client.conversations.create(metadata={f"k{i}": "v" for i in range(17)})
    assert too_many.value.body["param"] == "metadata"
    with pytest.raises(BadRequestError) as too_long:
        client.conversations.update(conv.id, metadata={"k": "x" * 513})
    assert too_long.value.body["param"] == "metadata.k"
    with pytest.raises(BadRequestError) as many_items:
        client.conversations.items.create(conv.id, items=[{"role": "user", "content": "x"}] * 21)
    assert many_items.value.body["param"] == "items"
    with pytest.raises(BadRequestError) as bad_item:
        client.conversations.create(items=[{"role": "robot", "content": "x"}])
    assert bad_item.value.body["param"] == "items[0].role"
    with pytest.raises(BadRequestError) as cursor:
        client.conversations.items.list(conv.id, after="msg_nope")
    assert cursor.value.body["param"] == "after"
    with pytest.raises(NotFoundError):
        client.conversations.items.list("conv_missing")


def test_tenant_isolation(client: OpenAI, server: str) -> None:
    conv = client.conversations.create(items=[{"role": "user", "content": "secret"}])
    other = OpenAI(base_url=f"{server}/v1", api_key="another-key", max_retries=0)
    with pytest.raises(NotFoundError):
        other.conversations.retrieve(conv.id)
    with pytest.raises(NotFoundError):
        other.conversations.items.list(conv.id)
    with pytest.raises(NotFoundError):
        other.conversations.items.create(conv.id, items=[{"role": "user", "content": "intrusion"}])
    with pytest.raises(NotFoundError):
        other.conversations.update(conv.id, metadata={"a": "b"})
    with pytest.raises(NotFoundError):
        other.conversations.delete(conv.id)
    with pytest.raises(NotFoundError):
        other.responses.create(model="test/echo", conversation=conv.id, input="[[history]]")
    assert [_text(it) for it in _all_items(client, conv.id)] == ["secret"]
