"""Server-sent events framing. Each event is ONE chunk (``event:`` line,
single-line ``data:`` JSON, blank line) so a client's parser never sees an
event split across reads; LF line endings; the stream ends with
``data: [DONE]``.

Also what every front door does with a turn's stream (``opening``,
``translate``): hold it until its first output, so a turn that fails before
any output is answered as an HTTP error, then re-encode the rest in the
door's own dialect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

import orjson

from responsa.engine.engine import failure
from responsa.protocol import events as E
from responsa.protocol.errors import ResponsaError

DONE = b"data: [DONE]\n\n"
T = TypeVar("T")


def frame(event: dict[str, Any]) -> bytes:
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


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
