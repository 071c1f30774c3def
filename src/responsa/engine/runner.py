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
from typing import Any, Protocol

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


class Leases(Protocol):
    """Who keeps a stored foreground response leased while it runs
    (``engine.background.BackgroundRunner``)."""

    def lease(self, response_id: str) -> tuple[str, float]: ...

    def release(self, response_id: str) -> None: ...

    def finish_later(self, tenant: str, response: dict[str, Any], appended: list[Any] | None) -> None: ...


async def execute(prep: Prepared, store: Store, tenant: str, *, idempotency_key: str | None = None,
                  deferred: bool = False, leases: Leases | None = None) -> AsyncGenerator[Event, None]:
    """With ``leases``, a row created before the first event carries a lease
    (renewed while the turn runs), so a server that dies mid-turn leaves it
    to the sweeper instead of ``in_progress`` forever; a final write that
    fails (database outage) is retried by ``leases.finish_later``."""
    turn = prep.turn
    rid = turn.response["id"]
    deferred = deferred and idempotency_key is None
    created = prep.store and not deferred
    if created:
        lease = leases.lease(rid) if leases is not None else None
        try:
            await store.create_response(tenant, turn.response, prep.request_json, turn.input_items,
                                        idempotency_key=idempotency_key, lease=lease)
        except BaseException:
            if leases is not None:
                leases.release(rid)
            raise
    finished = False
    pending: tuple[dict[str, Any], list[Item] | None] | None = None
    """The ending the store has not taken yet."""
    try:
        async for ev in run(turn):
            if ev["type"] in TERMINAL:
                resp = ev["response"]
                appended = conversation_items(turn.input_items, resp)
                if created:
                    pending = (resp, appended)
                    await store.finish_response(tenant, resp, appended)
                    pending = None
                elif prep.store:
                    await store.record_response(tenant, resp, prep.request_json, turn.input_items, appended)
                elif appended:
                    await store.append_conversation_items(tenant, resp["conversation_id"], appended,
                                                          response_id=resp["id"])
                finished = True
            yield ev
    finally:
        try:
            if created and not finished and pending is None:
                code, message = CLIENT_GONE
                turn.builder.stop(ResponsaError(message, status=499, type="invalid_request_error", code=code))
                pending = (turn.response, None)
                await asyncio.shield(store.finish_response(tenant, turn.response))
                pending = None
        finally:
            if created and leases is not None:
                if pending is not None:
                    leases.finish_later(tenant, *pending)
                leases.release(rid)
