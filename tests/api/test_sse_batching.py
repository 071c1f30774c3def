"""``sse.EventStream`` writes every frame that is ready before the turn has
to wait in one write (one upstream read carrying five tokens is one
``write()``, not five), never splits a frame, and a stream stopped while a
write is pending still stops its producer where it waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from responsa.api import sse

Message = dict[str, Any]


async def _run(stream: sse.EventStream) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        raise AssertionError("EventStream does not listen: CancelOnDisconnect does")

    await stream({"type": "http"}, receive, send)
    return sent


async def test_frames_ready_together_are_written_together() -> None:
    async def frames() -> AsyncIterator[bytes]:
        for i in range(3):  # one upstream read's worth
            yield b"event: a\ndata: %d\n\n" % i
        await asyncio.sleep(0.01)  # the next read
        for i in range(3, 5):
            yield b"event: a\ndata: %d\n\n" % i
        await asyncio.sleep(0)
        yield sse.DONE

    sent = await _run(sse.EventStream(frames()))
    assert sent[0]["type"] == "http.response.start"
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert [m["body"] for m in sent[1:]] == [
        b"event: a\ndata: 0\n\nevent: a\ndata: 1\n\nevent: a\ndata: 2\n\n",
        b"event: a\ndata: 3\n\nevent: a\ndata: 4\n\n",
        sse.DONE]  # the end goes with the last batch: no empty closing write
    assert [m["more_body"] for m in sent[1:]] == [True, True, False]


async def test_a_long_ready_run_is_cut_at_the_batch_size() -> None:
    frame = b"event: a\ndata: " + b"x" * 1000 + b"\n\n"

    async def frames() -> AsyncIterator[bytes]:
        for _ in range(200):  # a replay: everything ready at once
            yield frame
        yield sse.DONE

    bodies = [m["body"] for m in (await _run(sse.EventStream(frames())))[1:]]
    assert b"".join(bodies) == frame * 200 + sse.DONE
    assert len(bodies) == 4 and all(len(b) <= sse.BATCH_BYTES + len(frame) for b in bodies)
    assert all(b.endswith(b"\n\n") for b in bodies)  # never half a frame


async def test_stopped_while_writing_stops_the_producer_where_it_waits() -> None:
    upstream = asyncio.Event()
    cleaned: list[str] = []

    async def frames() -> AsyncIterator[bytes]:
        yield b"event: a\ndata: 0\n\n"
        try:
            await upstream.wait()  # waiting for the upstream when the client stops reading
            yield b"event: a\ndata: 1\n\n"
        finally:
            await asyncio.sleep(0)  # cleanup that awaits (the store write of a failed record)
            cleaned.append("producer")

    blocked = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            blocked.set()
            await asyncio.Event().wait()  # a client that stopped reading: the write never drains

    async def receive() -> Message:
        raise AssertionError

    task = asyncio.create_task(sse.EventStream(frames())({"type": "http"}, receive, send))
    await blocked.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["producer"]


async def test_frames_made_before_a_failure_are_written() -> None:
    async def frames() -> AsyncIterator[bytes]:
        yield b"event: a\ndata: 0\n\n"
        raise OSError("the store is unreachable")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        raise AssertionError

    with pytest.raises(OSError):
        await sse.EventStream(frames())({"type": "http"}, receive, send)
    assert [m.get("body") for m in sent[1:]] == [b"event: a\ndata: 0\n\n"]
