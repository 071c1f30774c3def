"""The event builder on its own (no server): for fixture turns, the live
events equal the replay of the response they built, event for event, and
the delta cutting does not depend on how a provider chunked its text."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from responsa.engine.engine import opening
from responsa.engine.events import EventBuilder, pieces, replay
from responsa.protocol.errors import ServerError, UpstreamError, from_stored
from responsa.protocol.events import TERMINAL
from responsa.protocol.response import empty_usage, new_response
from responsa.providers import base as m
from responsa.tools.base import ItemKind, ToolRoute
from responsa.tools.mcp.items import MCP_CALL, MCP_LIST_TOOLS
from responsa.tools.registry import ITEM_KINDS
from tests.helpers import validate_stream

Step = list[m.ModelEvent]


def _response() -> dict[str, Any]:
    return new_response(id="resp_test", model="test/echo", status="in_progress", instructions=None, tools=[],
                        tool_choice="auto", params={}, previous_response_id=None, conversation_id=None, store=True,
                        background=False, metadata={})


def _builder(**kw: Any) -> EventBuilder:
    return EventBuilder(_response(), kinds=ITEM_KINDS, **kw)


def live(steps: list[Step], *, routes: dict[str, ToolRoute] | None = None,
         run: Callable[[EventBuilder, list[tuple[int, dict[str, Any]]]], list[dict[str, Any]]] | None = None,
         fail: Exception | None = None, finish: str = "completed", quiet: bool = False) -> list[dict[str, Any]]:
    """Drive a builder the way ``engine.loop`` does."""
    b = _builder()
    b.quiet = quiet
    b.routes = routes or {}
    events = b.begin()
    for step in steps:
        b.new_step()
        for ev in step:
            events += b.feed(ev)
        if fail is not None:
            assert isinstance(fail, UpstreamError | ServerError)
            return events + b.fail(fail, empty_usage())
        events += b.close_open("incomplete" if finish == "incomplete" else "completed")
        calls = b.take_server_calls()
        if calls and run is not None:
            events += run(b, calls)
    if finish == "incomplete":
        return events + b.complete("incomplete", empty_usage(), reason="max_output_tokens")
    return events + b.complete("completed", empty_usage(), completed_at=1)


def assert_replays(events: list[dict[str, Any]]) -> None:
    validate_stream(events)
    final = events[-1]["response"]
    assert events[-1]["type"] in TERMINAL
    assert replay(final, opening(final), kinds=ITEM_KINDS) == events


def words(text: str) -> list[m.TextDelta]:
    return [m.TextDelta(w) for w in text.split(" ")]


def test_text() -> None:
    assert_replays(live([[m.TextDelta("Hello "), m.TextDelta("wor"), m.TextDelta("ld, again"), m.Finish()]]))


def test_reasoning_summary_encrypted_then_text() -> None:
    assert_replays(live([[m.ReasoningDelta("I should ", summary=True), m.ReasoningDelta("answer.", summary=True),
                          m.ReasoningDone("opaque-state"), m.TextDelta("Yes."), m.Finish()]]))


def test_raw_reasoning_and_opaque_only_reasoning() -> None:
    assert_replays(live([[m.ReasoningDelta("step one "), m.ReasoningDelta("step two"), m.ReasoningDone(None),
                          m.ReasoningDone("sig"), m.TextDelta("ok"), m.Finish()]]))


def test_refusal_after_text() -> None:
    assert_replays(live([[m.TextDelta("Well "), m.RefusalDelta("I cannot "), m.RefusalDelta("help."), m.Finish()]]))


def test_logprobs_follow_their_tokens() -> None:
    lp = [{"token": t, "logprob": -0.5, "bytes": list(t.encode()), "top_logprobs": []}
          for t in ("Hel", "lo ", "there ", "fri", "end")]
    events = live([[m.TextDelta("Hello ", lp[:2]), m.TextDelta("there fri", lp[2:4]), m.TextDelta("end", lp[4:]),
                    m.Finish()]])
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert [d["delta"] for d in deltas] == ["Hello ", "there ", "friend"]
    assert [len(d["logprobs"]) for d in deltas] == [2, 1, 2]
    assert_replays(events)


def test_interleaved_parallel_function_calls_stay_contiguous() -> None:
    steps: list[Step] = [[m.ToolCallStart(0, "call_a", "get_weather"), m.ToolCallStart(1, "call_b", "get_time"),
                          m.ToolCallDelta(1, '{"tz": '), m.ToolCallDelta(0, '{"city": "Paris"}'),
                          m.ToolCallDelta(1, '"UTC"}'), m.Finish("tool_calls")]]
    events = live(steps)
    order = [(e["type"], e.get("output_index")) for e in events if "output_index" in e]
    first_done = order.index(("response.output_item.done", 0))
    assert all(index == 0 for _, index in order[:first_done + 1])
    assert events[-1]["response"]["output"][1]["arguments"] == '{"tz": "UTC"}'
    assert_replays(events)


def _fake_server(outputs: dict[str, str]) -> Callable[[EventBuilder, list[tuple[int, dict[str, Any]]]],
                                                       list[dict[str, Any]]]:
    """A toolset's ``execute``: finishes the calls (in the order given) through the ``Emitter`` methods."""
    def run(b: EventBuilder, calls: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        events = []
        for index, item in calls:
            item.update(output=outputs[item["name"]], error=None, status="completed")
            events += b.finish_item(index, item)
        return events
    return run


def test_server_calls_hold_later_items_until_they_ran() -> None:
    routes = {"add": ToolRoute(MCP_CALL, {"server_label": "calc", "name": "add"}),
              "shout": ToolRoute(MCP_CALL, {"server_label": "calc", "name": "shout"})}
    b = _builder()
    b.routes = routes
    events = b.begin()
    index, opened = b.open_item(MCP_LIST_TOOLS, {"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "calc",
                                                 "tools": []})
    events += opened
    events += b.finish_item(index, {"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "calc",
                                    "tools": [{"name": "add"}]})
    b.new_step()
    for ev in [m.ToolCallStart(0, "c1", "add"), m.ToolCallDelta(0, '{"a": 1}'), m.ToolCallStart(1, "c2", "shout"),
               m.ToolCallDelta(1, '{"text": "hi"}'), m.TextDelta("while "), m.TextDelta("waiting")]:
        events += b.feed(ev)
    events += b.close_open()
    sent = len(events)
    calls = b.take_server_calls()
    assert [item["name"] for _, item in calls] == ["add", "shout"]
    assert not any(e.get("output_index") == 2 and e["type"] == "response.output_item.added" for e in events[:sent])
    events += _fake_server({"add": "2", "shout": "HI"})(b, calls)
    b.new_step()
    events += b.feed(m.TextDelta("done"))
    events += b.close_open()
    events += b.complete("completed", empty_usage(), completed_at=1)
    assert_replays(events)


def test_approved_call_opened_by_a_toolset_with_its_arguments() -> None:
    b = _builder()
    events = b.begin()
    call = {"type": "mcp_call", "id": "mcp_1", "server_label": "calc", "name": "add",
            "arguments": '{"a": 20, "b": 22}', "status": "in_progress", "approval_request_id": "mcpr_1"}
    index, opened = b.open_item(MCP_CALL, call)
    events += opened
    events += b.finish_item(index, {**call, "output": "42", "error": None, "status": "completed"})
    events += b.complete("completed", empty_usage(), completed_at=1)
    assert_replays(events)


def test_approval_request_ends_the_turn() -> None:
    routes = {"add": ToolRoute(ITEM_KINDS["mcp_approval_request"], {"server_label": "calc", "name": "add"})}
    assert_replays(live([[m.ToolCallStart(0, "c1", "add"), m.ToolCallDelta(0, "{}"), m.Finish("tool_calls")]],
                        routes=routes))


@pytest.mark.parametrize("status", [429, 502, 400])
def test_failures_keep_their_error(status: int) -> None:
    events = live([words("partial answer here")], fail=UpstreamError("boom", status=status))
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["output"][0]["status"] == "incomplete"
    error = events[-1]["response"]["error"]
    assert from_stored(error).status == status and events[-2]["error"]["type"] == error["type"]
    assert_replays(events)


def test_failure_before_any_output() -> None:
    assert_replays(live([[]], fail=ServerError()))


def test_incomplete() -> None:
    assert_replays(live([[*words("cut short here"), m.Finish("length")]], finish="incomplete"))


def test_stop_cancels_and_settles_open_items() -> None:
    b = _builder()
    events = b.begin()
    events += b.feed(m.TextDelta("half "))
    events += b.feed(m.TextDelta("way"))
    events += b.stop(None)
    assert events[-1]["type"] == "response.failed" and events[-1]["response"]["status"] == "cancelled"
    assert events[-1]["response"]["output"][0]["status"] == "incomplete"
    assert_replays(events)


def test_websocket_failure_is_one_terminal_event() -> None:
    b = _builder(error_event=False)
    events = [*b.begin(), *b.fail(UpstreamError("boom"))]
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.failed"]


def test_pieces_do_not_depend_on_chunking() -> None:
    text = ("Some words,  then averyveryverylongwordwithoutanyspaceatall and "
            "中文没有空格的句子很长很长很长很长很长很长很长 end ")
    want = pieces(text)
    assert "".join(p for p, _ in want) == text
    rng = random.Random(7)
    for _ in range(50):
        b = _builder()
        b.begin()
        out = []
        i = 0
        while i < len(text):
            n = rng.randint(1, 9)
            out += b.feed(m.TextDelta(text[i:i + n]))
            i += n
        out += b.close_open()
        assert [e["delta"] for e in out if e["type"] == "response.output_text.delta"] == [p for p, _ in want]


@pytest.mark.parametrize("seed", range(20))
def test_piece_cutting_matches_for_token_shaped_chunks(seed: int) -> None:
    """Upstreams send tokens with leading spaces (" Paris") or trailing ones ("Paris "), long words
    split in several tokens, runs of spaces and newlines: the incremental cut equals the one-shot cut."""
    from responsa.engine.events import _Pieces

    rng = random.Random(seed)
    alphabet = ["a", "bb", "ccc", "x" * 30, " ", "  ", "\n", "中文", ".", "word"]
    text = "".join(rng.choice(alphabet) for _ in range(200))
    for shape in range(3):
        cut = _Pieces()
        out = []
        i = 0
        while i < len(text):
            n = rng.randint(1, 12)
            if shape == 1:  # leading-space tokens
                j = text.find(" ", i + 1)
                n = (j - i) if j > i else len(text) - i
            elif shape == 2:  # trailing-space tokens
                j = text.find(" ", i)
                n = (j - i + 1) if j >= i else len(text) - i
            out += cut.feed(text[i:i + n])
            i += n
        out += cut.flush()
        assert out == pieces(text)


def _ids_out(value: Any) -> Any:
    """``value`` without the ids (new ones are drawn for every item)."""
    if isinstance(value, dict):
        return {k: _ids_out(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_ids_out(v) for v in value]
    return value


_LP = [{"token": t, "logprob": -0.5, "bytes": list(t.encode()), "top_logprobs": []} for t in ("Hi ", "there")]


@pytest.mark.parametrize(("steps", "kw"), [
    ([[m.TextDelta("Hello "), m.TextDelta("wor"), m.TextDelta("ld, again"), m.Finish()]], {}),
    ([[m.ReasoningDelta("I should ", summary=True), m.ReasoningDone("opaque"), m.TextDelta("Yes."), m.Finish()]], {}),
    ([[m.ReasoningDelta("raw "), m.ReasoningDelta("thought"), m.TextDelta("Hi"), m.Finish()]], {}),
    ([[m.TextDelta("Well "), m.RefusalDelta("I cannot "), m.RefusalDelta("help."), m.Finish()]], {}),
    ([[m.TextDelta("Hi ", _LP[:1]), m.TextDelta("there", _LP[1:]), m.Finish()]], {}),
    ([[m.ToolCallStart(0, "call_a", "f"), m.ToolCallStart(1, "call_b", "g"), m.ToolCallDelta(1, '{"a": '),
       m.ToolCallDelta(0, "{}"), m.ToolCallDelta(1, "1}"), m.Finish("tool_calls")]], {}),
    ([[m.TextDelta("cut sh"), m.Finish("length")]], {"finish": "incomplete"}),
    ([[m.TextDelta("half an ans")]], {"fail": UpstreamError("The upstream stream broke off.")}),
])
def test_quiet_builder_ends_with_the_same_response(steps: list[Step], kw: dict[str, Any]) -> None:
    """A non-streamed turn (``quiet``) skips the item events, and ends with
    exactly the response the streamed one ends with."""
    loud, quiet = live(steps, **kw), live(steps, quiet=True, **kw)
    assert _ids_out(quiet[-1]["response"]) == _ids_out(loud[-1]["response"])
    assert [e["type"] for e in quiet if e["type"] != "error"] == [
        "response.created", "response.in_progress", loud[-1]["type"]]


def test_every_registered_kind_declares_its_events() -> None:
    for kind in ITEM_KINDS.values():
        assert isinstance(kind, ItemKind)
        assert kind.delta is None or kind.stream is not None
