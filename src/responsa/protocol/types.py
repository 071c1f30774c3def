"""The domain's JSON shapes, named once.

Items, events and Responses stay plain JSON dicts at run time (they are
decoded from and encoded to the wire and the store on the hot path, and
their optional keys vary by type), so ``Item``/``Event``/``Response`` are
aliases every layer imports from here rather than each module declaring
its own ``dict[str, Any]``. The small fixed shapes are TypedDicts.
"""

from __future__ import annotations

from typing import Any, TypedDict

Item = dict[str, Any]
"""A Responses item (message, reasoning, function_call, mcp_call, ...) as JSON."""

Event = dict[str, Any]
"""A Responses stream event: ``{"type", "sequence_number", ...}``."""

Response = dict[str, Any]
"""The Response object (see ``protocol.response.new_response`` for its keys)."""


class ErrorObject(TypedDict):
    """The OpenAI error object (``{"error": ErrorObject}`` in JSON bodies,
    the payload of an ``error`` event and of a WebSocket error frame)."""

    message: str
    type: str
    param: str | None
    code: str | None


class StoredError(TypedDict):
    """``response.error`` of a failed Response: the spec's ``code`` and
    ``message``, plus ``type`` and ``param`` so a replayed or retried failure
    reports exactly what the live one did (a 429 stays a ``rate_limit_error``)."""

    code: str
    message: str
    type: str
    param: str | None
