"""Client-executed tool types that the Responses API names natively
(``shell``, ``local_shell``, ``apply_patch``, ``custom``, ``computer``,
``tool_search`` with ``execution: "client"``), for every provider.

Most upstreams know only function tools, so each such tool is shown to the
model as one function (``ClientCall.function``) and the model's call to it
is turned back into the native item (``shell_call``, ``apply_patch_call``,
``custom_tool_call``...) by the event builder, through a ``ToolRoute`` whose
``decode`` builds the item's fields from the model's arguments. The client
runs the call and sends the native output item (``shell_call_output``...)
with the next request; ``model_view`` rewrites both items into a
``function_call`` and its ``function_call_output`` for the model. That one
rewrite serves every way a history comes back: the request's ``input``,
``previous_response_id`` chains, conversations and ``store: false``
clients replaying items themselves.

Native items a client sends are validated with the ``openai`` SDK's own
request types (a 400 names the exact path), and kept in their canonical
JSON so that a stored chain replays them exactly.

A module per tool type defines its ``ClientCall`` and gets its registry
entry from ``tool_type``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from responsa.protocol.errors import invalid
from responsa.protocol.ids import new_id
from responsa.tools.base import ClientToolset, ItemKind, Normaliser, ToolRequest, ToolRoute, Toolset, ToolType

Item = dict[str, Any]
Event = dict[str, Any]
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _loc(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc
                   if not (isinstance(p, str) and ("[" in p or p[:1].isupper()
                                                   or p.startswith(("function-", "typed-dict")))))


def _plain(value: Any, loc: tuple[int | str, ...]) -> Any:
    """``value`` with pydantic's lazy iterators (``Iterable`` fields) made
    lists, validating them now: a ``ValidationError`` carries ``loc``."""
    if isinstance(value, dict):
        return {k: _plain(v, (*loc, k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, (*loc, i)) for i, v in enumerate(value)]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    try:
        items = list(value)
    except ValidationError as exc:
        raise _Located(exc, loc) from None
    return [_plain(v, (*loc, i)) for i, v in enumerate(items)]


class _Located(Exception):
    def __init__(self, exc: ValidationError, loc: tuple[int | str, ...]) -> None:
        self.exc, self.loc = exc, loc


def sdk_normaliser(param_type: Any, prefix: str, *, id_key: str = "id") -> Normaliser:
    """A normaliser validating an input item against the ``openai`` SDK's
    TypedDict for it; unknown keys are dropped, a missing ``id`` is made."""
    adapter: TypeAdapter[Any] = TypeAdapter(param_type)

    def normalise(raw: dict[str, Any], param: str) -> Item:
        try:
            item: Item = _plain(dict(adapter.validate_python(raw)), ())
        except (ValidationError, _Located) as exc:
            base: tuple[int | str, ...] = exc.loc if isinstance(exc, _Located) else ()
            error = exc.exc if isinstance(exc, _Located) else exc
            err = error.errors(include_url=False)[0]
            where = _loc((*base, *err["loc"]))
            raise invalid(f"Invalid '{param}{where}': {err['msg']}.", f"{param}{where}",
                          "invalid_type" if "type" in err["type"] else "invalid_value") from None
        if id_key == "id" and not item.get("id"):
            item["id"] = new_id(prefix)
        return {k: v for k, v in item.items() if v is not None}

    return normalise


@dataclass(frozen=True, slots=True)
class ClientCall:
    """One native client-executed tool type, as every model sees it."""

    tool_type: str
    """The ``tools[].type`` value (``"shell"``)."""
    kind: ItemKind
    """The call item the model's call becomes (``shell_call``)."""
    output_type: str
    """The item the client answers with (``shell_call_output``)."""
    parse_tool: Callable[[dict[str, Any], str], dict[str, Any]]
    """``(tools[i], "tools[i]") -> entry`` as echoed; raises 400s."""
    function: Callable[[dict[str, Any]], dict[str, Any]]
    """The entry as a function tool (``name``, ``description``, ``parameters``)."""
    decode: Callable[[dict[str, Any], str], dict[str, Any]]
    """``(entry, the model's arguments) -> the call item's fields`` (lenient: never raises)."""
    encode: Callable[[Item], str]
    """A call item -> the function arguments the model would have written."""
    output: Callable[[Item], Any]
    """An output item -> ``function_call_output.output`` (text or content parts)."""
    input_items: Mapping[str, Normaliser] = field(default_factory=dict)
    call_id_of_output: Callable[[Item], str | None] = lambda item: item.get("call_id")
    name_of_call: Callable[[Item], str] | None = None
    """The function name of a call item (default: the tool type)."""
    also: tuple[str, ...] = ()
    """Other ``tools[].type`` values served the same way (``computer_use_preview``)."""

    def function_name(self, item: Item) -> str:
        return self.name_of_call(item) if self.name_of_call else self.tool_type


def _call_view(spec: ClientCall, item: Item) -> Item:
    return {"type": "function_call", "id": item["id"], "call_id": item.get("call_id") or item["id"],
            "name": spec.function_name(item), "arguments": spec.encode(item), "status": "completed"}


def _output_view(spec: ClientCall, item: Item) -> Item:
    return {"type": "function_call_output", "id": item.get("id") or new_id("fco"),
            "call_id": spec.call_id_of_output(item) or "", "output": spec.output(item), "status": "completed"}


def model_view(specs: Mapping[str, ClientCall], items: list[Item]) -> list[Item]:
    """``items`` with every native call/output item of ``specs`` (keyed by
    item type) as a function call/output, everything else unchanged."""
    out = []
    for item in items:
        spec = specs.get(item.get("type", ""))
        if spec is None:
            out.append(item)
        elif item["type"] == spec.kind.type:
            out.append(_call_view(spec, item))
        else:
            out.append(_output_view(spec, item))
    return out


class ClientCallToolset(ClientToolset):
    """The tools of one client-executed type in one response: functions for
    the model, routes that turn calls to them back into native items."""

    def __init__(self, spec: ClientCall, entries: list[dict[str, Any]], taken: set[str]) -> None:
        self.spec = spec
        super().__init__()
        for entry in entries:
            fn = spec.function(entry)
            name = fn["name"]
            if name in taken:
                raise invalid(f"Two tools are named {name!r}: a '{spec.tool_type}' tool is shown to models as a "
                              f"function of that name.", "tools")
            taken.add(name)
            self._definitions.append({"type": "function", "strict": False, **fn})
            fields = {"name": entry["name"]} if "name" in entry and spec.name_of_call else {}
            self._routes[name] = ToolRoute(spec.kind, fields, decode=_bind(spec.decode, entry))
        self._specs = {spec.kind.type: spec, spec.output_type: spec}

    def model_view(self, items: list[Item]) -> list[Item]:
        return model_view(self._specs, items)


def _bind(decode: Callable[[dict[str, Any], str], dict[str, Any]], entry: dict[str, Any]) -> Callable[[str], Item]:
    return lambda arguments: decode(entry, arguments)



def tool_type(spec: ClientCall) -> ToolType:
    """The registry entry of a client-executed tool type."""
    specs = {spec.kind.type: spec, spec.output_type: spec}

    async def build(req: ToolRequest) -> Toolset | None:
        if not req.entries:
            return None
        return ClientCallToolset(spec, [entry for _, entry in req.entries], set(req.function_names))

    return ToolType(name=spec.tool_type, tool_types=(spec.tool_type, *spec.also), parse_tool=spec.parse_tool,
                    item_kinds=(spec.kind,), input_items=spec.input_items,
                    model_view=lambda items: model_view(specs, items), view_types=tuple(specs), build=build)


# --- helpers the tool type modules share ----------------------------------------


def arguments(raw: str) -> dict[str, Any]:
    """The model's arguments as an object ({} when they are not one)."""
    try:
        value = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def function_pair(item_id: str, name: str, args: dict[str, Any], output: str) -> list[Item]:
    """A server-run call (``file_search_call``, ``web_search_call``) as the
    function call and output the model made and read: every upstream knows
    those, and a later turn must show the model what it saw."""
    return [{"type": "function_call", "id": item_id, "call_id": item_id, "name": name, "arguments": dumps(args),
             "status": "completed"},
            {"type": "function_call_output", "id": f"{item_id}_out", "call_id": item_id, "output": output,
             "status": "completed"}]


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def only_keys(tool: dict[str, Any], param: str, known: frozenset[str]) -> None:
    if unknown := sorted(set(tool) - known):
        raise invalid(f"Unknown parameter: '{param}.{unknown[0]}'.", f"{param}.{unknown[0]}", "unknown_parameter")


def tool_name(tool: dict[str, Any], param: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid(f"Invalid '{param}.name': must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-'.",
                      f"{param}.name")
    return name
