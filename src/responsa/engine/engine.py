"""The ``Engine``: built once at start-up, the one object the front doors
talk to.

It owns what every turn needs (the store, the provider registry, the
settings, the compaction key, the background runner) so a front door never
passes them around: it turns an HTTP request, a WebSocket frame or a chat
completion into an engine call and the result back into its wire format.

- ``prepare``: a request body -> a runnable ``Prepared`` turn (every 4xx
  is raised here, before any event);
- ``run``: the turn's events, persisted as they go (``runner.execute``);
- ``respond``: the same, folded into the final Response (non-streamed);
- ``submit``: start a background turn; ``follow`` its events; ``cancel`` it;
- ``replay`` / ``events``: a stored response's event stream again;
- ``earlier``: the response an idempotency key already names.

A failed turn is a value: its terminal event's response carries the error
(``protocol.errors.from_stored`` turns it back into the HTTP error).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from responsa.config import Settings
from responsa.embeddings import lookup as embedder
from responsa.engine import context, prompts, runner
from responsa.engine.background import BackgroundRunner
from responsa.engine.context import Prepared
from responsa.engine.events import replay
from responsa.fanout import Fanout
from responsa.files import FileStore, open_files
from responsa.protocol import events as E
from responsa.protocol.errors import Conflict, ResponsaError, from_stored, not_found
from responsa.protocol.request import CreateResponse, parse_create
from responsa.protocol.types import Event, Item, Response
from responsa.providers.registry import Registry
from responsa.store.base import Store
from responsa.tools.registry import ITEM_KINDS, TOOL_TYPES
from responsa.vectorstores import VectorStores
from responsa.vectorstores.ranking import Fusion

IDEMPOTENCY_WAIT_S = 30.0


def _content(body: dict[str, Any]) -> dict[str, Any]:
    """A request without how it is delivered."""
    return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}


def opening(response: Response) -> Response:
    """``response`` as the first events of its stream showed it: before any
    output, usage, outcome, or tool type summary."""
    start = {**response, "status": "in_progress", "output": [], "usage": None, "completed_at": None,
             "error": None, "incomplete_details": None}
    for tt in TOOL_TYPES:
        if tt.response_fields is not None:
            for key, value in tt.response_fields().items():
                if key in start:
                    start[key] = value
    return start


def failure(response: Response) -> ResponsaError | None:
    """The error a failed response ended with (None unless it failed)."""
    return from_stored(response.get("error")) if response.get("status") == "failed" else None


class Engine:
    def __init__(self, *, settings: Settings, store: Store, registry: Registry, fanout: Fanout,
                 compaction_key: bytes) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.fanout = fanout
        self.compaction_key = compaction_key
        self.files: FileStore = open_files(settings, store)
        """Uploaded files (``responsa.files``): ``input_file`` parts, the Files API, vector stores."""
        self.background = BackgroundRunner(store, fanout, self._reprepare, lease_s=settings.background_lease_s,
                                           concurrency=settings.background_concurrency)
        self.vector_stores = VectorStores(
            store, embedder_for=lambda model: embedder(registry, model), files=self.files,
            embedding_model=settings.vector_store_embedding_model, lease_s=settings.background_lease_s,
            concurrency=settings.vector_store_concurrency,
            fusion=Fusion(settings.vector_store_rrf_k, settings.vector_store_embedding_weight,
                          settings.vector_store_text_weight))
        """Vector stores (``responsa.vectorstores``): the API's and the ``file_search`` tool's."""

    async def start(self) -> None:
        """Seed the server's prompts (a broken prompt file stops start-up), then take background work."""
        if self.settings.prompts_dir:
            await prompts.seed(self.store, self.settings.prompts_dir)
        await self.background.start()
        await self.vector_stores.start()

    async def stop(self) -> None:
        await self.vector_stores.stop()
        await self.background.stop()

    # -- turns -----------------------------------------------------------------

    async def prepare(self, request: CreateResponse | dict[str, Any], tenant: str, *,
                      history: list[Item] | None = None, enforce_window: bool = True) -> Prepared:
        """``request`` (a parsed request or its JSON body) as a runnable turn.
        ``history`` overrides the store lookup of ``previous_response_id``
        (WebSocket mode keeps ``store=false`` responses on the connection);
        ``enforce_window=False`` skips ``truncation`` (token counting wants
        the whole context)."""
        req = request if isinstance(request, CreateResponse) else parse_create(request)
        return await context.prepare(req, tenant=tenant, store=self.store, registry=self.registry,
                                     default_model=self.settings.default_model, history=history,
                                     compaction_key=self.compaction_key, enforce_window=enforce_window,
                                     files=self.files, vector_search=self.vector_stores)

    async def _reprepare(self, tenant: str, request_json: dict[str, Any]) -> Prepared:
        return await self.prepare(request_json, tenant)

    async def load_history(self, tenant: str, previous_response_id: str | None) -> list[Item]:
        return await context.load_history(self.store, tenant, previous_response_id)

    def run(self, prep: Prepared, tenant: str, *, idempotency_key: str | None = None, deferred: bool = False,
            error_event: bool = True) -> AsyncGenerator[Event, None]:
        """The turn's events, stored as ``runner.execute`` describes.
        ``error_event=False``: a failure ends with ``response.failed`` alone
        (WebSocket mode: one terminal frame per turn)."""
        prep.turn.builder.error_event = error_event
        return runner.execute(prep, self.store, tenant, idempotency_key=idempotency_key, deferred=deferred,
                              leases=self.background)

    async def respond(self, prep: Prepared, tenant: str, *, idempotency_key: str | None = None) -> Response:
        """Run the turn to its end: the final Response (failed ones carry their error)."""
        final: Response = prep.turn.response
        prep.turn.builder.quiet = True  # only the ending is read: no deltas cut, no item events built
        async for ev in self.run(prep, tenant, idempotency_key=idempotency_key, deferred=True):
            if ev["type"] in E.TERMINAL:
                final = ev["response"]
        return final

    async def earlier(self, tenant: str, response_id: str, request_json: dict[str, Any]) -> Response:
        """The result of an earlier request with the same idempotency key,
        which must have been the same request: a key reused for a different
        one is a client bug that silently returning the old response would
        hide. How it is delivered (``stream``) may differ: the key names the
        response. Waits (up to ``IDEMPOTENCY_WAIT_S``) for it to finish."""
        if _content(await self.store.get_request(tenant, response_id) or {}) != _content(request_json):
            raise Conflict("This Idempotency-Key was already used for a different request; use a new key.",
                           code="idempotency_key_reused")
        deadline = time.monotonic() + IDEMPOTENCY_WAIT_S
        while True:
            found = await self.store.get_response(tenant, response_id)
            if found is None:
                raise not_found(f"Response with id '{response_id}' not found.")
            if found["status"] not in ("queued", "in_progress") or found.get("background"):
                return found
            if time.monotonic() > deadline:
                raise Conflict("A request with this Idempotency-Key is still in progress.",
                               code="idempotency_in_progress")
            await asyncio.sleep(0.05)

    # -- background ------------------------------------------------------------

    async def submit(self, prep: Prepared, tenant: str, *, idempotency_key: str | None = None) -> Response:
        """Store a background turn ``queued`` and start it; the response as it is now."""
        return await self.background.submit(tenant, prep, idempotency_key=idempotency_key)

    def follow(self, tenant: str, response_id: str, after: int) -> AsyncIterator[Event]:
        return self.background.follow(tenant, response_id, after)

    async def cancel(self, tenant: str, found: Response) -> Response:
        if not found.get("background"):
            raise ResponsaError("Only background responses can be cancelled.", param="response_id")
        return await self.background.cancel(tenant, found)

    # -- replay ----------------------------------------------------------------

    def replay(self, response: Response, after: int = -1) -> list[Event]:
        """The stored ``response``'s event stream, re-derived by the encoder
        (see ``engine.events``), from the event after ``after``."""
        events = replay(response, opening(response), kinds=ITEM_KINDS)
        return [ev for ev in events if ev["sequence_number"] > after]

    async def events(self, tenant: str, response: Response, after: int = -1) -> AsyncIterator[Event]:
        """The event stream of a stored response, for ``GET ?stream=true``:
        a background response's stored (and still live) events, any other
        response's replay."""
        if response.get("background"):
            async for ev in self.follow(tenant, response["id"], after):
                yield ev
            return
        for ev in self.replay(response, after):
            yield ev
