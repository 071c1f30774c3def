"""Persistence around a turn: the terminal response is stored before the
terminal event is delivered, so nothing a client was told about is ever
missing from the store. When anyone can see the response while it runs (a
stream, an idempotency key) its row exists before the first event too, and
a client that goes away mid-turn leaves a ``failed`` record, never a row
stuck ``in_progress``. Otherwise (``deferred``) one transaction at the end
writes it all: half the writes on the most common path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from responsa.engine.context import Prepared
from responsa.engine.loop import run
from responsa.protocol.errors import ResponsaError
from responsa.protocol.events import TERMINAL
from responsa.protocol.types import Event, Item
from responsa.store.base import Store

CLIENT_GONE = "client_disconnected", "The client disconnected before the response finished."


def conversation_items(input_items: list[Item], response: dict[str, Any]) -> list[Item]:
    """What a finished turn adds to its conversation: its input then its
    output, appended as one block so concurrent turns never interleave.
    A failed turn adds nothing. ``store=false`` does not change this (as on
    OpenAI): the conversation is state the client asked to keep."""
    if not response.get("conversation_id") or response["status"] not in ("completed", "incomplete"):
        return []
    return [*input_items, *response["output"]]


async def execute(prep: Prepared, store: Store, tenant: str, *, idempotency_key: str | None = None,
                  deferred: bool = False) -> AsyncGenerator[Event, None]:
    turn = prep.turn
    deferred = deferred and idempotency_key is None
    created = prep.store and not deferred
    if created:
        await store.create_response(tenant, turn.response, prep.request_json, turn.input_items,
                                    idempotency_key=idempotency_key)
    finished = False
    try:
        async for ev in run(turn):
            if ev["type"] in TERMINAL:
                resp = ev["response"]
                appended = conversation_items(turn.input_items, resp)
                if created:
                    await store.finish_response(tenant, resp, appended)
                elif prep.store:
                    await store.record_response(tenant, resp, prep.request_json, turn.input_items, appended)
                elif appended:
                    await store.append_conversation_items(tenant, resp["conversation_id"], appended,
                                                          response_id=resp["id"])
                finished = True
            yield ev
    finally:
        if created and not finished:
            code, message = CLIENT_GONE
            turn.builder.stop(ResponsaError(message, status=499, type="invalid_request_error", code=code))
            await asyncio.shield(store.finish_response(tenant, turn.response))
