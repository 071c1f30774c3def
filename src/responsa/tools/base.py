"""The tool contract: what a tool type is, and what the engine asks of it.

Like ``providers/base.py`` for upstreams: a tool type is ONE module that
builds a ``ToolType`` and ONE line in ``tools/registry.py`` that lists it.
The engine, the event encoder, replay, input validation and the API never
name a tool type; they go through the registry.

A ``ToolType`` declares
- ``tool_types``: the ``tools[].type`` values it serves (``"mcp"``), and
  ``parse_tool``, which validates one such entry (a 400 naming the exact
  parameter) and returns it as the Response echoes and the store keeps it
  (secrets redacted);
- ``item_kinds``: the output items it produces, each an ``ItemKind`` that
  names the item's events (``response.mcp_call.in_progress``, its argument
  delta/done events, the events when the server finished running it). The
  ``EventBuilder`` makes every event from these declarations, live and on
  replay, so a tool type never builds an event, an index or a sequence
  number itself, and a stored response of any tool type replays exactly;
- ``input_items``: normalisers for the item types a client may send back as
  input (``mcp_approval_response``, a replayed ``mcp_call``, a
  ``shell_call_output``...), each ``(raw, param) -> Item`` raising 400s;
- ``model_view``: those items rewritten as what every provider understands
  (``function_call`` + ``function_call_output``), used when the request
  does not bring the tool type's toolset;
- ``build``: the per-response ``Toolset`` (or ``None`` when the request does
  not use this tool type). Client-executed tool types (function tools)
  have no ``build``: their calls end the turn and go back to the client.

A ``Toolset`` lives for one response. The engine calls
``prepare`` (before the first model call: list tools, run calls a client
approved, rewrite the context), shows the model ``definitions()``, routes
the model's calls to the names in ``routes()`` to it (the builder makes the
route's ``ItemKind`` item instead of a ``function_call``), hands the open
items of ``executes`` kinds to ``execute`` after each model step, feeds
``model_view`` of the step's items to the next step, and ``aclose``s it.
Items are opened and finished through the ``Emitter`` it is given (the
``EventBuilder``): ``open_item`` and ``finish_item`` return the events to
yield, in order.

Adding a built-in tool (``web_search``, ``file_search``, ``custom``,
``shell``, ``apply_patch``...): ``tools/<name>.py`` defining its
``ItemKind``s and ``TOOL_TYPE = ToolType(...)``, plus one line in
``tools/registry.py``. A client-executed round-trip (``shell_call`` ->
``shell_call_output``) needs ``tool_types``/``parse_tool``, a route
(``build`` returns a Toolset whose ``routes()`` map the model-facing name to
its ``ItemKind`` and whose ``execute`` is never called because the kind
does not ``executes``), ``input_items`` for the output item, and
``model_view``. A server-executed one (``web_search``) sets
``executes=True`` on its kind and finishes the items in ``execute``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from responsa.protocol.errors import invalid
from responsa.protocol.types import Event, Item, Response

if TYPE_CHECKING:
    from responsa.config import Settings
    from responsa.protocol.request import CreateResponse

Normaliser = Callable[[dict[str, Any], str], Item]
"""Validate one raw input item at ``param`` (e.g. ``input[2]``) into its canonical JSON, or raise a 400."""


def _no_events(item: Item) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True, slots=True)
class ItemKind:
    """How one output item type is streamed. The builder emits, for every
    item of this kind, live and on replay alike::

        response.output_item.added        (the item with ``stream`` = "", ``status`` in_progress,
                                           ``results`` fields absent)
        <opened events>                   e.g. response.mcp_call.in_progress
        <delta> ... <done>                the ``stream`` field as the model (or the tool) wrote it
        <finished(item) events>           e.g. response.mcp_call.completed, once the server ran it
        response.output_item.done

    Every item event carries ``item_id`` and ``output_index``; ``done``
    events also ``stream``'s full value and the ``done_fields``.
    """

    type: str
    id_prefix: str
    status: bool = True
    """The item has a ``status`` (in_progress -> completed / incomplete / failed)."""
    call_id: bool = False
    """The item carries the model's ``call_id`` (a call the client answers)."""
    stream: str | None = None
    """The field the model streams (``arguments``, ``input``), if any."""
    delta: str | None = None
    """Event per chunk of ``stream`` (None: chunks are gathered silently)."""
    done: str | None = None
    """Event when ``stream`` is complete (None: none)."""
    done_fields: tuple[str, ...] = ()
    """Item fields repeated in the ``done`` event (``name`` for function calls)."""
    opened: tuple[str, ...] = ()
    """Events right after ``output_item.added`` (``response.<type>.in_progress``)."""
    finished: Callable[[Item], tuple[str, ...]] = _no_events
    """Events once the item's work is over, before ``output_item.done``
    (``response.mcp_call.completed`` or ``.failed``, from the item's status)."""
    outcomes: tuple[str, ...] = ()
    """Every event type ``finished`` can return (declared for docs and tests)."""
    results: tuple[str, ...] = ()
    """Fields only a finished item has (``output``, ``error``): absent from ``output_item.added``."""
    blank: Mapping[str, Any] = field(default_factory=dict)
    """Fields as they are while the item runs (``tools: []`` of a listing), shown in ``output_item.added``."""
    executes: bool = False
    """The server runs items of this kind (``Toolset.execute``) after the model step that made them."""


@dataclass(frozen=True, slots=True)
class ToolRoute:
    """A model-facing tool name that belongs to a toolset: the builder makes
    a ``kind`` item with ``fields`` (e.g. ``server_label``, ``name``) for a
    model call to it, instead of a client-side ``function_call``."""

    kind: ItemKind
    fields: Mapping[str, Any] = field(default_factory=dict)
    decode: Callable[[str], dict[str, Any]] | None = None
    """For tool types whose native item is not ``arguments``-shaped (a shell
    action, a custom tool's free-form ``input``): the model's complete
    arguments -> the item's fields. The arguments are then gathered without
    delta events, and the kind's ``stream`` field, if any, is sent in one
    delta once decoded."""


class Emitter(Protocol):
    """What a toolset makes items with (implemented by ``EventBuilder``).
    Both methods return the events to yield now, in order."""

    @property
    def response(self) -> Response:
        """The Response being built (for summary fields a tool type keeps on it)."""
        ...

    def open_item(self, kind: ItemKind, item: Item) -> tuple[int, list[Event]]:
        """Add ``item`` (its output index and events); its ``stream`` field, if
        already set, is streamed in one delta."""
        ...

    def finish_item(self, index: int, item: Item) -> list[Event]:
        """End the item at ``index`` whose result fields and ``status`` the caller has set."""
        ...


class Toolset(Protocol):
    """One tool type's tools for one response (see the module docstring)."""

    def prepare(self, emit: Emitter, context: list[Item]) -> AsyncIterator[Event]:
        """Before the first model call: make any items that come first (tool
        listings, approved calls) and rewrite ``context`` in place into what a
        model understands."""
        ...

    def routes(self) -> Mapping[str, ToolRoute]:
        """Model-facing tool name -> route (valid after ``prepare``)."""
        ...

    def definitions(self) -> list[dict[str, Any]]:
        """Function tool definitions the model sees (valid after ``prepare``)."""
        ...

    def execute(self, calls: list[tuple[int, Item]], emit: Emitter) -> AsyncIterator[Event]:
        """Run these open items (output index, item) of ``executes`` kinds and
        finish each with ``emit.finish_item``, in the order given."""
        ...

    def model_view(self, items: list[Item]) -> list[Item]:
        """``items`` as the model should see them next step."""
        ...

    async def aclose(self) -> None: ...


class ClientToolset:
    """A ``Toolset`` whose calls go back to the client (namespace, tool
    search, shell, custom...): it only shows the model ``definitions`` and
    routes the model's calls to item kinds. The server never runs its calls,
    so ``execute`` and ``aclose`` have nothing to do, and ``prepare`` only
    rewrites the context into ``model_view``. Subclasses fill ``_definitions``
    and ``_routes`` and override ``model_view``."""

    def __init__(self) -> None:
        self._definitions: list[dict[str, Any]] = []
        self._routes: dict[str, ToolRoute] = {}

    async def prepare(self, emit: Emitter, context: list[Item]) -> AsyncIterator[Event]:
        context[:] = self.model_view(context)
        return
        yield

    def routes(self) -> Mapping[str, ToolRoute]:
        return self._routes

    def definitions(self) -> list[dict[str, Any]]:
        return self._definitions

    async def execute(self, calls: list[tuple[int, Item]], emit: Emitter) -> AsyncIterator[Event]:
        """Never called: these calls are the client's to run."""
        return
        yield

    def model_view(self, items: list[Item]) -> list[Item]:
        return items

    async def aclose(self) -> None:
        return None


class SearchHit(Protocol):
    """One excerpt a vector store search found (a ``file_search_call`` result)."""

    @property
    def file_id(self) -> str: ...

    @property
    def filename(self) -> str: ...

    @property
    def score(self) -> float: ...

    @property
    def text(self) -> str: ...

    @property
    def attributes(self) -> dict[str, Any]: ...


class VectorSearch(Protocol):
    """What the ``file_search`` tool searches with: the server's vector
    stores (``responsa.vectorstores.VectorStores``, whose ``search`` also
    serves ``POST /v1/vector_stores/{id}/search``)."""

    async def retrieve(self, tenant: str, vector_store_id: str) -> dict[str, Any]:
        """The vector store; a 404 ``ResponsaError`` if the tenant has none of that id."""
        ...

    async def search(self, tenant: str, vector_store_ids: Sequence[str], query: str, *, max_num_results: int,
                     filters: Any, ranking_options: Any) -> Sequence[SearchHit]:
        """The best ``max_num_results`` excerpts over all the stores, best first;
        a ``ResponsaError`` when the search cannot run (the call fails, the turn goes on)."""
        ...


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """What ``ToolType.build`` gets: the request, its entries of this tool
    type (``(index in tools, entry)``), and the context it continues."""

    request: CreateResponse
    entries: list[tuple[int, dict[str, Any]]]
    history: list[Item]
    new_items: list[Item]
    function_names: set[str]
    settings: Settings
    tenant: str = ""
    vector_search: VectorSearch | None = None
    """The server's vector stores (``file_search``); None where the server has none."""

    def single_entry(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """The one entry of a server-run tool that may appear once and whose
        name a function tool may not take (``web_search``, ``file_search``)."""
        if not self.entries:
            return None
        if len(self.entries) > 1:
            raise invalid(f"Only one '{name}' tool may be given.", f"tools[{self.entries[1][0]}]")
        if name in self.function_names:
            raise invalid(f"A function named '{name}' clashes with the {name} tool.", "tools")
        return self.entries[0]


def _same(items: list[Item]) -> list[Item]:
    return items


def _as_is(tool: dict[str, Any]) -> dict[str, Any]:
    return tool


@dataclass(frozen=True, slots=True)
class ToolType:
    """One registry entry (see the module docstring)."""

    name: str
    tool_types: tuple[str, ...] = ()
    parse_tool: Callable[[dict[str, Any], str], dict[str, Any]] | None = None
    """``(tools[i] entry, "tools[i]") -> echoed entry``; raises 400s."""
    redact: Callable[[dict[str, Any]], dict[str, Any]] = _as_is
    """A ``tools[]`` entry as the store keeps the request: without secrets."""
    item_kinds: tuple[ItemKind, ...] = ()
    input_items: Mapping[str, Normaliser] = field(default_factory=dict)
    model_view: Callable[[list[Item]], list[Item]] = _same
    view_types: tuple[str, ...] | None = None
    """The item types ``model_view`` rewrites, when not those of
    ``item_kinds`` and ``input_items``."""
    build: Callable[[ToolRequest], Awaitable[Toolset | None]] | None = None
    response_fields: Callable[[], dict[str, Any]] | None = None
    """Summary fields the tool type keeps on a Response that uses it, with
    their initial values (set before the first event, so a replay starts
    from the same snapshot as the live stream)."""

    def views(self, present: Set[str]) -> bool:
        """Whether ``model_view`` can change a context holding items of the
        ``present`` types. The engine skips it otherwise: each view is a pass
        over every item, ~0.1-0.3 ms on a 2,000-item history (issue 16)."""
        if self.model_view is _same:
            return False
        types = self.view_types if self.view_types is not None else (
            *(kind.type for kind in self.item_kinds), *self.input_items)
        return any(t in present for t in types)

    @property
    def events(self) -> frozenset[str]:
        """Every event type this tool type's items produce (for docs and tests)."""
        names: set[str] = set()
        for kind in self.item_kinds:
            names.update(kind.opened)
            names.update(kind.outcomes)
            names.update(e for e in (kind.delta, kind.done) if e)
        return frozenset(names)
