"""``tool_search`` with ``execution: "client"``: the client finds tools.

Codex sends it for models that defer MCP tools: the model searches, the
client answers with a ``tool_search_output`` listing the tools it found,
and those become callable from then on. Models see a ``tool_search``
function (with the request's own ``parameters`` schema); its call becomes a
``tool_search_call`` item. When a ``tool_search_output`` comes back, its
tools are described to the model as the function's output and offered as
functions (namespaces flattened, as ``namespace`` does), so the model's
next call to one of them is an ordinary ``function_call`` (with its
``namespace``) for the client to run.

``execution: "server"`` (OpenAI searching tools marked ``defer_loading``)
runs only on an OpenAI Responses upstream, so elsewhere it is a 400.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from openai.types.responses.response_input_item_param import ToolSearchCall

from responsa.protocol.errors import invalid
from responsa.protocol.ids import new_id
from responsa.tools.base import ClientToolset, Emitter, ItemKind, ToolRequest, ToolRoute, Toolset, ToolType
from responsa.tools.client_calls import arguments, dumps, only_keys, sdk_normaliser
from responsa.tools.functions import FUNCTION_CALL
from responsa.tools.namespace import flat_name

Item = dict[str, Any]
NAME = "tool_search"
TOOL_SEARCH_CALL = ItemKind("tool_search_call", "tsc", call_id=True, blank={"execution": "client", "arguments": {}})
_DEFAULT_PARAMETERS = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}


def _output_item(raw: dict[str, Any], param: str) -> Item:
    """A ``tool_search_output``: its ``tools`` are whatever the client found
    (definitions it will run), so only their shape is checked here."""
    tools = raw.get("tools")
    if not isinstance(tools, list) or not all(isinstance(t, dict) and isinstance(t.get("type"), str) for t in tools):
        raise invalid(f"Invalid '{param}.tools': expected an array of tool definitions.", f"{param}.tools")
    if raw.get("call_id") is not None and not isinstance(raw["call_id"], str):
        raise invalid(f"Invalid type for '{param}.call_id': expected a string.", f"{param}.call_id", "invalid_type")
    status = raw.get("status", "completed")
    if status not in ("in_progress", "completed", "incomplete"):
        raise invalid(f"Invalid value for '{param}.status': {status!r}.", f"{param}.status")
    item: Item = {"type": "tool_search_output", "id": raw.get("id") if isinstance(raw.get("id"), str) else
                  new_id("tso"), "execution": "client", "status": status, "tools": tools}
    if raw.get("call_id"):
        item["call_id"] = raw["call_id"]
    return item


def parse_tool(tool: dict[str, Any], param: str) -> dict[str, Any]:
    only_keys(tool, param, frozenset({"type", "execution", "description", "parameters"}))
    if tool.get("execution", "server") != "client":
        raise invalid(f"'{param}' with execution 'server' searches tools marked 'defer_loading', which only an "
                      "OpenAI Responses upstream ('openai-responses' provider) does; use execution 'client' to "
                      "search on the client.", f"{param}.execution", "unsupported_value")
    if tool.get("parameters") is not None and not isinstance(tool["parameters"], dict):
        raise invalid(f"Invalid type for '{param}.parameters': expected a JSON schema object.",
                      f"{param}.parameters", "invalid_type")
    return dict(tool)


def _decode(raw: str) -> Item:
    return {"arguments": arguments(raw), "execution": "client"}


def _describe(tools: list[Any]) -> str:
    lines = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "namespace":
            for member in tool.get("tools") or []:
                lines.append(f"- {flat_name(tool['name'], member.get('name', ''))}: {member.get('description') or ''}")
        elif tool.get("name"):
            lines.append(f"- {tool['name']}: {tool.get('description') or ''}")
    return "Tools now available:\n" + "\n".join(lines) if lines else "No tools found."


def model_view(items: list[Item]) -> list[Item]:
    out = []
    for item in items:
        kind = item.get("type")
        if kind == "tool_search_call":
            out.append({"type": "function_call", "id": item["id"], "call_id": item.get("call_id") or item["id"],
                        "name": NAME, "arguments": dumps(item.get("arguments") or {}), "status": "completed"})
        elif kind == "tool_search_output":
            out.append({"type": "function_call_output", "id": item["id"], "call_id": item.get("call_id") or "",
                        "output": _describe(item.get("tools") or []), "status": "completed"})
        else:
            out.append(item)
    return out


class ToolSearchToolset(ClientToolset):
    def __init__(self, entry: dict[str, Any], taken: set[str]) -> None:
        self.entry = entry
        self.taken = taken
        super().__init__()
        self._definitions = [{
            "type": "function", "name": NAME, "strict": False,
            "description": entry.get("description") or "Search for more tools; found tools become callable.",
            "parameters": entry.get("parameters") or _DEFAULT_PARAMETERS}]
        self._routes = {NAME: ToolRoute(TOOL_SEARCH_CALL, {"execution": "client"},
                                                              decode=_decode)}

    def _offer(self, tools: list[Any]) -> None:
        """Tools a ``tool_search_output`` brought: callable from now on."""
        for tool in tools:
            if not isinstance(tool, dict):
                continue
            members = [(tool["name"], m) for m in tool.get("tools") or []] if tool.get("type") == "namespace" \
                else [(None, tool)]
            for namespace, member in members:
                if member.get("type") != "function" or not isinstance(member.get("name"), str):
                    continue
                name = flat_name(namespace, member["name"]) if namespace else member["name"]
                if name in self.taken:
                    continue
                self.taken.add(name)
                self._definitions.append({"type": "function", "name": name, "strict": False,
                                          "description": member.get("description"),
                                          "parameters": member.get("parameters") or {"type": "object",
                                                                                     "properties": {}}})
                if namespace:
                    self._routes[name] = ToolRoute(FUNCTION_CALL, {"name": member["name"], "namespace": namespace})

    async def prepare(self, emit: Emitter, context: list[Item]) -> AsyncIterator[dict[str, Any]]:
        for item in context:
            if item.get("type") == "tool_search_output":
                self._offer(item.get("tools") or [])
        async for ev in super().prepare(emit, context):
            yield ev

    def model_view(self, items: list[Item]) -> list[Item]:
        return model_view(items)


async def build(req: ToolRequest) -> Toolset | None:
    if not req.entries:
        return None
    index, entry = req.entries[0]
    if len(req.entries) > 1:
        raise invalid("Only one 'tool_search' tool may be given.", f"tools[{req.entries[1][0]}]")
    return ToolSearchToolset(parse_tool(entry, f"tools[{index}]"), set(req.function_names))


TOOL_TYPE = ToolType(
    name="tool_search", tool_types=("tool_search",), parse_tool=parse_tool, item_kinds=(TOOL_SEARCH_CALL,),
    input_items={"tool_search_call": sdk_normaliser(ToolSearchCall, "tsc"),
                 "tool_search_output": _output_item},
    model_view=model_view, build=build)
