"""Server-sent events framing. Each event is ONE chunk (``event:`` line,
single-line ``data:`` JSON, blank line) so a client's parser never sees an
event split across reads; LF line endings; the stream ends with
``data: [DONE]``."""

from __future__ import annotations

from collections.abc import AsyncIterator
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


HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
