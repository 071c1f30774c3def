"""A fake Anthropic Messages API speaking the real SSE wire format.

Scripted by the first word of the last user message text (a user turn that
only carries tool results answers with what the tools returned), so tests
drive behaviour through ordinary requests: ``tool`` (two tool calls),
``call-with:NAME {json}`` (one call with exactly those arguments),
``weather`` (one get_weather call when tools are given), ``json`` (the
forced json_output tool), ``think``, ``redacted``, ``long``, ``cache``,
``crash``, ``overloaded``, ``bad``; anything else is echoed. Every request body is recorded so
tests can assert the translation that produced it.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.base import FakeUpstream, Json

Event = tuple[str, Json]

MODELS = ["claude-sonnet-4-5", "claude-haiku-4-5"]
SIGNATURE = "c2lnbmF0dXJlLW9mLXRoZS10aG91Z2h0"


def _last_user_text(body: Json) -> str:
    for msg in reversed(body["messages"]):
        if msg["role"] != "user":
            continue
        content = msg["content"]
        if isinstance(content, str):
            return content
        texts = [str(b["text"]) for b in content if b["type"] == "text"]
        if texts:
            return texts[-1]
        results = [b["content"] for b in content if b["type"] == "tool_result"]
        return "tool_result " + " | ".join(r if isinstance(r, str) else orjson.dumps(r).decode()
                                           for r in results)
    return ""


def _start(input_tokens: int = 12, cache_read: int = 0, cache_creation: int = 0) -> Event:
    usage = {"input_tokens": input_tokens, "output_tokens": 1,
             "cache_creation_input_tokens": cache_creation, "cache_read_input_tokens": cache_read}
    return "message_start", {"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-fake", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage}}


def _block(index: int, block: Json, deltas: list[Json]) -> list[Event]:
    return [("content_block_start", {"type": "content_block_start", "index": index, "content_block": block}),
            *(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
              for d in deltas),
            ("content_block_stop", {"type": "content_block_stop", "index": index})]


def _text(index: int, *chunks: str) -> list[Event]:
    return _block(index, {"type": "text", "text": ""}, [{"type": "text_delta", "text": c} for c in chunks])


def _tool(index: int, call_id: str, name: str, *chunks: str) -> list[Event]:
    return _block(index, {"type": "tool_use", "id": call_id, "name": name, "input": {}},
                  [{"type": "input_json_delta", "partial_json": c} for c in chunks])


def _end(stop_reason: str, output_tokens: int = 7) -> list[Event]:
    return [("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                               "usage": {"output_tokens": output_tokens}}),
            ("message_stop", {"type": "message_stop"})]


def _error(etype: str, message: str) -> Json:
    return {"type": "error", "error": {"type": etype, "message": message}, "request_id": "req_fake"}


class FakeAnthropic(FakeUpstream):
    MODELS = MODELS

    def __init__(self) -> None:
        super().__init__([Route("/v1/messages", self._messages, methods=["POST"])])
        self.overloaded_failures = 2
        self.url = ""  # set by whoever serves it

    def models_page(self) -> Json:
        return {"data": [{"type": "model", "id": m} for m in MODELS], "has_more": False}

    async def _messages(self, request: Request) -> Response:
        body = await self.record(request)
        text = _last_user_text(body)
        word = text.split(" ", 1)[0]
        if word == "overloaded" and self.overloaded_failures > 0:
            self.overloaded_failures -= 1
            return Response(orjson.dumps(_error("overloaded_error", "Overloaded")), status_code=529,
                            media_type="application/json")
        if word == "bad":
            return Response(orjson.dumps(_error("invalid_request_error", "messages.0: bad block")),
                            status_code=400, media_type="application/json")
        return StreamingResponse(self._sse(self._script(word, text, body)), media_type="text/event-stream")

    def _script(self, word: str, text: str, body: Json) -> list[Event]:
        forced = body.get("tool_choice", {}).get("name")
        if word == "tool":
            return [_start(), *_text(0, "Let me check."),
                    *_tool(1, "toolu_01", "get_weather", '{"city": ', '"Paris"}'),
                    *_tool(2, "toolu_02", "get_time"), *_end("tool_use")]
        if word.startswith("call-with:"):
            name, _, args = text.partition(":")[2].strip().partition(" ")
            return [_start(), *_tool(0, "toolu_c", name, args[:5], args[5:]), *_end("tool_use")]
        if word == "weather" and body.get("tools"):
            return [_start(), *_tool(0, "toolu_w", "get_weather", '{"city": ', '"Paris"}'), *_end("tool_use")]
        if word == "json" and forced == "json_output":
            return [_start(), *_tool(0, "toolu_j", "json_output", '{"answer": ', "42}"), *_end("tool_use")]
        if word == "think":
            thinking = _block(0, {"type": "thinking", "thinking": "", "signature": ""},
                              [{"type": "thinking_delta", "thinking": "Let me "},
                               {"type": "thinking_delta", "thinking": "think."},
                               {"type": "signature_delta", "signature": SIGNATURE}])
            return [_start(), *thinking, *_text(1, "Done thinking."), *_end("end_turn")]
        if word == "redacted":
            redacted = _block(0, {"type": "redacted_thinking", "data": "QUJD"}, [])
            return [_start(), *redacted, *_text(1, "ok"), *_end("end_turn")]
        if word == "long":
            return [_start(), *_text(0, "This is cut"), *_end("max_tokens", 5)]
        if word == "cache":
            return [_start(10, cache_read=100, cache_creation=20), *_text(0, "cached"), *_end("end_turn", 5)]
        if word == "crash":
            return [_start(), *_text(0, "partial")[:2], ("error", _error("overloaded_error", "Overloaded"))]
        return [_start(), *_text(0, "Echo: ", text), *_end("end_turn")]

    @staticmethod
    async def _sse(events: list[Event]) -> Any:
        for i, (name, data) in enumerate(events):
            yield f"event: {name}\ndata: {orjson.dumps(data).decode()}\n\n".encode()
            if i == 0:
                yield b'event: ping\ndata: {"type": "ping"}\n\n'

