"""The upstream of the benchmark suite: a lean OpenAI Chat Completions
server (aiohttp, 0 ms think time) that every path under test calls: the
direct baseline, Responsa and llama-stack alike.

    python benchmarks/_fake_upstream.py --port 9001

Unlike ``tests/fakes/openai_chat.py`` it records nothing (a long run would
grow it) and spends as little CPU per request as it can, because on a
2-core machine every cycle it takes is taken from the server under test.
The last user message scripts the answer:

- ``deltas:N``: a streamed answer of N one-word content deltas, written
  16 events per ``write()`` (as a fast upstream's tokens arrive, coalesced);
- ``hold``: a stream that sends its first two deltas and then stays open until
  the client goes away (``GET /stats`` counts the streams held open);
- anything else: ``You said: <text>``, one delta per word.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from typing import Any

import orjson
from aiohttp import web

MODELS = {"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]}
BATCH = 16
# A fresh id per completion, as real upstreams send: llama-stack keys its inference store by it, and a
# repeated id makes every store write after the first fail (an exception and a logged traceback per request).
IDS = itertools.count()
HELD = web.AppKey("held", dict)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    return b"data: " + orjson.dumps({
        "id": cid, "object": "chat.completion.chunk", "created": 0, "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}) + b"\n\n"


def _usage(cid: str, model: str, prompt: int, completion: int) -> bytes:
    return b"data: " + orjson.dumps({
        "id": cid, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion}}) + b"\n\n"


async def models(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(MODELS), content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(request.app[HELD]), content_type="application/json")


async def completions(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    model = body.get("model", "fake-model")
    messages = body.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    text = _text(users[-1].get("content")) if users else ""
    prompt_tokens = len(messages)
    cid = f"chatcmpl-fake{next(IDS)}"
    if text.startswith("deltas:"):
        words = ["w "] * int(text.partition(":")[2])
    elif text != "hold":
        words = [w if i == 0 else " " + w for i, w in enumerate(f"You said: {text}".split(" "))]
    else:
        words = []
    if not body.get("stream"):
        answer = {"id": cid, "object": "chat.completion", "created": 0, "model": model,
                  "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                               "message": {"role": "assistant", "content": "".join(words), "refusal": None}}],
                  "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                            "total_tokens": prompt_tokens + len(words)}}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")
    resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await resp.prepare(request)
    if text == "hold":
        held = request.app[HELD]
        # Two words: a relay that re-cuts text into words (Responsa) sends a word once the next one begins.
        await resp.write(b"".join(_chunk(cid, model, delta) for delta in (
            {"role": "assistant", "content": ""}, {"content": "held"}, {"content": " open"})))
        held["open"] += 1
        held["max"] = max(held["max"], held["open"])
        try:
            transport = request.transport
            while transport is not None and not transport.is_closing():
                await asyncio.sleep(0.5)
        finally:
            held["open"] -= 1
        return resp
    frames = [_chunk(cid, model, {"role": "assistant", "content": ""})]
    frames += [_chunk(cid, model, {"content": w}) for w in words]
    frames.append(_chunk(cid, model, {}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        frames.append(_usage(cid, model, prompt_tokens, len(words)))
    frames.append(b"data: [DONE]\n\n")
    for i in range(0, len(frames), BATCH):
        await resp.write(b"".join(frames[i:i + BATCH]))
    await resp.write_eof()
    return resp


def app() -> web.Application:
    application = web.Application(client_max_size=64 * 2**20)
    application[HELD] = {"open": 0, "max": 0}
    application.router.add_get("/v1/models", models)
    application.router.add_get("/stats", stats)
    application.router.add_post("/v1/chat/completions", completions)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    web.run_app(app(), host=args.host, port=args.port, print=None, access_log=None, backlog=4096)


if __name__ == "__main__":
    main()
