"""Server-sent events framing and writing. Each event is one frame
(``event:`` line, single-line ``data:`` JSON, blank line), never split
across writes, so a client's parser never sees half an event; LF line
endings; the stream ends with ``data: [DONE]``.

Frames are written in batches: ``EventStream`` writes together every frame
that is ready before the turn has to wait (for the upstream's next read,
the store, a tool), so one upstream read that carried five tokens is one
``write()`` of five events, not five. That is where a streamed response's
CPU went (issue 16: ~26-33 us per event with one write per event).

Also what every front door does with a turn's stream (``opening``,
``translate``): hold it until its first output, so a turn that fails before
any output is answered as an HTTP error, then re-encode the rest in the
door's own dialect."""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from typing import Any, TypeVar

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from responsa.engine.engine import failure
from responsa.protocol import events as E
from responsa.protocol.errors import ResponsaError

DONE = b"data: [DONE]\n\n"
T = TypeVar("T")
BATCH_BYTES = 64 * 1024
"""A batch is written once it is this large even if more frames are ready
(a replayed response is all ready at once)."""

_PREFIXES: dict[str, bytes] = {}


def frame(event: dict[str, Any]) -> bytes:
    kind: str = event["type"]
    prefix = _PREFIXES.get(kind)
    if prefix is None:  # event types are a fixed set: the cache stays small
        prefix = _PREFIXES[kind] = b"event: " + kind.encode() + b"\ndata: "
    return prefix + orjson.dumps(event) + b"\n\n"


async def encode(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for ev in events:
        yield frame(ev)
    yield DONE


async def prepend(head: Iterable[dict[str, Any]],
                  rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """The events a route already pulled (to answer errors before the
    stream starts) followed by the rest of the turn's stream."""
    for ev in head:
        yield ev
    async for ev in rest:
        yield ev


async def opening(events: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """A turn's events up to its first output item (or its end). A translating
    door holds these before answering: a turn that fails before any output
    (an upstream 429, an unknown upstream model) is then an HTTP error the
    client's retry logic understands, not a 200 stream. ``opening_failure``
    says whether it did."""
    head: list[dict[str, Any]] = []
    async for ev in events:
        head.append(ev)
        if ev["type"] == E.ITEM_ADDED or ev["type"] in E.TERMINAL:
            break
    return head


def opening_failure(head: list[dict[str, Any]]) -> ResponsaError | None:
    """The error the turn failed with before its first output, if it did."""
    if head and head[-1]["type"] == E.FAILED:
        return failure(head[-1]["response"])
    return None


async def translate(head: list[dict[str, Any]], rest: AsyncIterator[dict[str, Any]],
                    feed: Callable[[dict[str, Any]], Iterable[bytes]],
                    error: Callable[[ResponsaError], bytes], end: bytes = b"") -> AsyncIterator[bytes]:
    """A turn's events re-encoded by a door: ``feed`` turns each event into
    the door's frames; a failure after the first output becomes the door's
    ``error`` frame; ``end`` closes the stream."""
    async for ev in prepend(head, rest):
        if ev["type"] == E.FAILED:
            exc = failure(ev["response"])
            if exc is not None:
                yield error(exc)
            continue
        for out in feed(ev):
            yield out
    if end:
        yield end


_END = object()


async def merge(streams: list[AsyncIterator[T]], buffer: int = 64) -> AsyncIterator[tuple[int, T]]:
    """Items of several streams as they come, each with its stream's index
    (``n`` choices of one chat completion). A failing stream raises here;
    leaving early stops the rest."""
    queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue(buffer)

    async def pump(i: int, stream: AsyncIterator[T]) -> None:
        try:
            async for item in stream:
                await queue.put((i, item))
            await queue.put((i, _END))
        except Exception as exc:  # delivered to the consumer, which raises it
            await queue.put((i, exc))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            i, item = await queue.get()
            if item is _END:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield i, item  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}

Step = Generator[Any, Any, bytes]


@types.coroutine
def _finish(step: Step, waiting: Any, exc: BaseException | None = None) -> Generator[Any, Any, bytes]:
    """Awaits what ``step`` (a pull from the frames that did not complete
    at once) is waiting for, then finishes it: exactly what ``await`` would
    have done had the pull been awaited from the start."""
    while True:
        try:
            if exc is not None:
                thrown, exc = exc, None
                waiting = step.throw(thrown)
                continue
            try:
                value = yield waiting
            except GeneratorExit:
                step.close()
                raise
            except BaseException as err:  # a cancellation: delivered where the producer waits
                exc = err
                continue
            waiting = step.send(value)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


class EventStream(Response):
    """A ``text/event-stream`` response written in batches (see the module
    docstring). A client that goes away is noticed by
    ``api.disconnect.CancelOnDisconnect``, which cancels the request's task:
    no second task listens for it here."""

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncIterator[bytes]) -> None:
        self.frames = frames
        self.status_code = 200
        self.background = None
        self.init_headers(HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        frames = self.frames
        ready: list[bytes] = []
        size = 0
        pending: tuple[Step, Any] | None = None
        try:
            while True:
                # Pull the next frame without awaiting: it either comes at once
                # (into the batch) or the producer has to wait (write the batch,
                # then wait with it).
                step: Step = frames.__anext__().__await__()
                try:
                    waiting = step.send(None)
                except StopIteration as got:
                    ready.append(got.value)
                    size += len(got.value)
                    if size >= BATCH_BYTES:
                        await send({"type": "http.response.body", "body": b"".join(ready), "more_body": True})
                        ready, size = [], 0
                    continue
                except StopAsyncIteration:
                    break
                except BaseException:
                    if ready:  # what was made before the failure still goes out (the error frame may follow)
                        with contextlib.suppress(Exception):
                            await send({"type": "http.response.body", "body": b"".join(ready), "more_body": True})
                    raise
                if ready:
                    pending = step, waiting
                    await send({"type": "http.response.body", "body": b"".join(ready), "more_body": True})
                    pending = None
                    ready, size = [], 0
                try:
                    frame_ = await _finish(step, waiting)
                except StopAsyncIteration:
                    break
                ready.append(frame_)
                size += len(frame_)
            await send({"type": "http.response.body", "body": b"".join(ready), "more_body": False})
        finally:
            if pending is not None:  # stopped while writing, the producer mid-wait: cancel it where it waits
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                    await _finish(*pending, asyncio.CancelledError())
