"""Validation of what the Chat Completions and Messages front doors send,
against the reference clients' own types in strict mode (a missing
required field, a float where an integer belongs, an unknown literal
fail): ``openai``'s ``ChatCompletion``/``ChatCompletionChunk`` and
``anthropic``'s ``Message``/``RawMessageStreamEvent``/``MessageTokensCount``;
errors in each API's shape.

``checked_http()`` is an ``httpx.Client`` whose transport validates every
response body the server sends through it, so a test driving the real SDK
(``chat.completions.create``/``.stream``/``.parse``,
``messages.create``/``.stream``) validates every completion, chunk and
event without repeating itself: pass it as the SDK's ``http_client``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from anthropic.types import Message, MessageTokensCount, RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

Json = dict[str, Any]

_EVENTS: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)


def validate_chat_completion(body: Json) -> ChatCompletion:
    assert body.get("object") == "chat.completion" and body.get("choices"), body
    return ChatCompletion.model_validate(body, strict=True)


def validate_chat_chunk(chunk: Json) -> ChatCompletionChunk:
    assert chunk.get("object") == "chat.completion.chunk", chunk
    return ChatCompletionChunk.model_validate(chunk, strict=True)


def validate_message(body: Json) -> Message:
    assert body.get("type") == "message", body
    return Message.model_validate(body, strict=True)


def validate_message_event(ev: Json) -> None:
    """A Messages stream event; ``ping`` (Anthropic's keep-alive, which the
    SDK skips) and ``error`` are outside the union type."""
    if ev.get("type") == "ping":
        assert ev == {"type": "ping"}, ev
    elif ev.get("type") == "error":
        validate_anthropic_error(ev)
    else:
        _EVENTS.validate_python(ev, strict=True)


def validate_openai_error(body: Json) -> None:
    err = body.get("error")
    assert isinstance(err, dict) and set(err) == {"message", "type", "param", "code"}, body
    assert isinstance(err["message"], str) and isinstance(err["type"], str), body


def validate_anthropic_error(body: Json) -> None:
    assert body.get("type") == "error" and set(body) <= {"type", "error", "request_id"}, body
    err = body["error"]
    assert set(err) == {"type", "message"} and isinstance(err["message"], str), body
    assert err["type"] in ("invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                           "request_too_large", "rate_limit_error", "api_error", "overloaded_error",
                           "billing_error", "timeout_error"), body


def chat_frames(raw: bytes) -> list[Json]:
    """The chunks of a ``/v1/chat/completions`` stream, each validated; the
    framing checked: ``data:`` lines only (no ``event:``), ``[DONE]`` last."""
    assert b"\r" not in raw
    frames = [f for f in raw.split(b"\n\n") if f]
    assert frames and frames[-1] == b"data: [DONE]", raw[-200:]
    out = []
    for f in frames[:-1]:
        assert f.startswith(b"data: ") and b"\n" not in f, f
        obj = json.loads(f[6:])
        if "error" in obj:
            validate_openai_error(obj)
        else:
            validate_chat_chunk(obj)
        out.append(obj)
    return out


def message_frames(raw: bytes) -> list[Json]:
    """The events of a ``/v1/messages`` stream, each validated; each frame's
    ``event:`` line names its type; the stream is bracketed by
    ``message_start`` ... ``message_stop`` (or ends in an ``error``)."""
    assert b"\r" not in raw
    out = []
    for f in (f for f in raw.decode().split("\n\n") if f):
        lines = f.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), f
        ev = json.loads(lines[1][6:])
        assert lines[0] == f"event: {ev['type']}", f
        validate_message_event(ev)
        out.append(ev)
    assert out and out[0]["type"] in ("message_start", "error"), out[:1]
    assert out[-1]["type"] in ("message_stop", "error"), out[-1:]
    return out


def check_body(path: str, status: int, content_type: str, raw: bytes) -> None:
    """Validate one response of a front door by its path and media type."""
    messages = path.startswith("/v1/messages")
    if status >= 400:
        body = json.loads(raw)
        (validate_anthropic_error if messages else validate_openai_error)(body)
    elif content_type.startswith("text/event-stream"):
        (message_frames if messages else chat_frames)(raw)
    elif path == "/v1/messages/count_tokens":
        MessageTokensCount.model_validate(json.loads(raw), strict=True)
    elif messages:
        validate_message(json.loads(raw))
    elif path == "/v1/chat/completions":
        validate_chat_completion(json.loads(raw))


def checked_http(httpx_module: Any = httpx, timeout: float = 120) -> Any:
    """A client of ``httpx_module`` (``httpx`` for ``openai``, ``httpx2`` for
    ``anthropic``) that validates every front-door response it reads."""

    class Teed(httpx_module.SyncByteStream):  # type: ignore[misc,name-defined]
        """The response stream as the client reads it; validated once read whole."""

        def __init__(self, inner: Any, response: Any, path: str) -> None:
            self.inner, self.response, self.path = inner, response, path
            self.buf: bytearray | None = bytearray()

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self.inner:
                if self.buf is not None:
                    self.buf += chunk
                yield chunk
            self._check()

        def _check(self) -> None:
            if self.buf:
                raw, self.buf = bytes(self.buf), None
                check_body(self.path, self.response.status_code, self.response.headers.get("content-type", ""),
                           raw)

        def close(self) -> None:
            """The SDKs stop reading at ``[DONE]`` and close: what they read is checked."""
            self.inner.close()
            self._check()

    class Checking(httpx_module.HTTPTransport):  # type: ignore[misc,name-defined]
        def handle_request(self, request: Any) -> Any:
            response = super().handle_request(request)
            path = request.url.path
            if path.startswith(("/v1/chat/completions", "/v1/messages")):
                response.stream = Teed(response.stream, response, path)
            return response

    return httpx_module.Client(transport=Checking(), timeout=timeout)
