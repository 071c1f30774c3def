"""A fake OpenAI Chat Completions server speaking the real wire format.

Scripted by the last user message text so tests drive it through ordinary
requests; every request body is recorded so tests can assert the translation
that produced it. Zero think time, so it doubles as the upstream in
benchmarks: ``python tests/fakes/openai_chat.py --port 9001``.

Scripts: ``call:a,b`` (parallel tool calls), ``call-with:NAME {json}`` (one
call with exactly those arguments), ``ollama-call:a,b`` (the same
as Ollama sends them: every call at index 0, finish_reason=stop), ``think`` (reasoning_content),
``refuse``, ``length`` (finish_reason=length), ``fail`` (500), ``fail-once``
(503 then success), ``rate-limit`` (429), ``bad-request`` (400), ``cut``
(connection dropped mid-stream), ``slow`` (2 s before the headers),
``weather...`` with tools (one get_weather call), ``json...`` with a
json_schema ``response_format`` (a JSON instance of the schema); a turn that
ends in tool results answers ``Tool results: <contents>``; anything else is
echoed back as ``You said: <text>``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import uvicorn
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

if __package__ in (None, ""):  # run as a script (benchmarks/overhead.py): make `tests.fakes` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from responsa.providers.test import example_of
from tests.fakes.base import FakeUpstream, Json, json_response, openai_error, text_of
from tests.fakes.embeddings import embeddings_route

MODELS = ["fake-model", "fake-model-mini"]


class FakeChat(FakeUpstream):
    MODELS = MODELS

    def __init__(self) -> None:
        super().__init__([Route("/v1/chat/completions", self._completions, methods=["POST"]), embeddings_route(self)])

    async def _completions(self, request: Request) -> Response:
        body = await self.record(request)
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        text = text_of(users[-1]["content"]) if users else ""
        self.seen[text] += 1
        if text == "fail":
            return openai_error(500, "fake upstream failure", "server_error")
        if text == "fail-once" and self.seen[text] == 1:
            return openai_error(503, "fake upstream overloaded", "server_error")
        if text == "rate-limit":
            return openai_error(429, "Rate limit reached for fake-model", "requests", code="rate_limit_exceeded")
        if text == "bad-request":
            return openai_error(400, "Invalid value for 'messages': fake bad request.", "invalid_request_error",
                          param="messages", code="invalid_value")
        if text == "slow":
            await asyncio.sleep(2)
        script = _script(text, body)
        if body.get("stream"):
            stream = self._sse(script, body, cut=text == "cut")
            return StreamingResponse(stream, media_type="text/event-stream")
        return json_response(200, _completion(script, body))

    async def _sse(self, script: _Script, body: Json, *, cut: bool) -> AsyncIterator[bytes]:
        for i, chunk in enumerate(script.chunks(body)):
            if cut and i == 3:
                raise ConnectionResetError("fake upstream dropped the connection")
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield b"data: [DONE]\n\n"


class _Script:
    """One scripted answer, rendered either as stream chunks or one completion."""

    def __init__(self, body: Json) -> None:
        self.model = body.get("model", "fake-model")
        self.reasoning: list[str] = []
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.calls: list[tuple[str, str, list[str]]] = []  # (id, name, argument pieces)
        self.finish = "stop"
        self.single_index = False
        self.prompt_tokens = sum(len(text_of(m.get("content")).split()) for m in body.get("messages", []))

    def _chunk(self, delta: Json, *, finish: str | None = None, logprobs: Json | None = None) -> Json:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": self.model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}

    def usage(self) -> Json:
        completion = len(self.reasoning) + len(self.text) + len(self.refusal) + len(self.calls)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion,
                "prompt_tokens_details": {"cached_tokens": self.prompt_tokens // 2},
                "completion_tokens_details": {"reasoning_tokens": len(self.reasoning)}}

    def chunks(self, body: Json) -> list[Json]:
        out = [self._chunk({"role": "assistant", "content": ""})]
        out += [self._chunk({"reasoning_content": r}) for r in self.reasoning]
        top = body.get("top_logprobs") or 0
        for piece in self.text:
            lp = _logprobs(piece, top) if body.get("logprobs") else None
            out.append(self._chunk({"content": piece}, logprobs=lp))
        out += [self._chunk({"refusal": r}) for r in self.refusal]
        for i, (call_id, name, pieces) in enumerate(self.calls):
            index = 0 if self.single_index else i
            out.append(self._chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                                    "function": {"name": name, "arguments": ""}}]}))
            out += [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
                    for p in pieces]
        out.append(self._chunk({}, finish=self.finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            out.append({**self._chunk({}), "choices": [], "usage": self.usage()})
        return out


def _logprobs(token: str, top: int) -> Json:
    def entry(tok: str, logprob: float) -> Json:
        return {"token": tok, "logprob": logprob, "bytes": list(tok.encode())}

    alternatives = [entry(token, -0.1), entry("<alt>", -2.5), entry("<alt2>", -4.0)][:top]
    return {"content": [{**entry(token, -0.1), "top_logprobs": alternatives}], "refusal": None}


def _called(text: str, body: Json) -> list[str]:
    if text.startswith(("call:", "ollama-call:")):
        return text.partition(":")[2].split(",")
    return ["get_weather"] if text.startswith("weather") and body.get("tools") else []


def _script(text: str, body: Json) -> _Script:
    s = _Script(body)
    messages = body.get("messages") or [{}]
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
    if messages[-1].get("role") == "tool":
        results: list[str] = []
        for m in reversed(messages):
            if m.get("role") != "tool":
                break
            results.insert(0, text_of(m.get("content")))
        s.text = ["Tool results: ", " | ".join(results)]
    elif text.startswith("json") and schema is not None:
        answer = orjson.dumps(example_of(schema)).decode()
        s.text = [answer[:4], answer[4:]]
    elif text.startswith("call-with:"):
        name, _, args = text.partition(":")[2].strip().partition(" ")
        s.calls.append(("call_fake_0", name, [args[:7], args[7:]]))
        s.finish = "tool_calls"
    elif names := _called(text, body):
        for i, name in enumerate(names):
            # ``weather``: arguments that fit a strict get_weather schema; ``call:``: numbered.
            args = orjson.dumps({"city": "Paris"} if text.startswith("weather") else {"city": "Paris", "n": i}).decode()
            s.calls.append((f"call_fake_{i}", name, [args[:5], args[5:12], args[12:]]))
        s.single_index = text.startswith("ollama")
        s.finish = "stop" if s.single_index else "tool_calls"
    elif text == "think":
        s.reasoning = ["Let me ", "think."]
        s.text = ["Thought", " done."]
    elif text == "refuse":
        s.refusal = ["I can't ", "help with that."]
    elif text == "length":
        s.text = ["This ", "is ", "cut"]
        s.finish = "length"
    else:
        words = f"You said: {text}".split(" ")
        s.text = [w if i == 0 else " " + w for i, w in enumerate(words)]
    return s


def _completion(script: _Script, body: Json) -> Json:
    message: Json = {"role": "assistant", "content": "".join(script.text) or None,
                     "refusal": "".join(script.refusal) or None}
    if script.reasoning:
        message["reasoning_content"] = "".join(script.reasoning)
    if script.calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": n, "arguments": "".join(p)}}
            for cid, n, p in script.calls]
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": script.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": script.finish}],
            "usage": script.usage()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    uvicorn.run(FakeChat().app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
