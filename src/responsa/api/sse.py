"""Server-sent events framing. Each event is ONE chunk (``event:`` line,
single-line ``data:`` JSON, blank line) so a client's parser never sees an
event split across reads; LF line endings; the stream ends with
``data: [DONE]``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


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


HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
