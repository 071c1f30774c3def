"""``namespace`` tools: a named group of function (and custom) tools.

For models that do not know namespaces, every member is flattened into a
top-level function named ``<namespace>__<tool>`` (shortened with a hash
when over 64 characters). A call to it becomes the member's own item with
the namespace restored: a ``function_call`` with ``name`` = the member and
``namespace`` = the group, as OpenAI returns it; ``model_view`` flattens
such calls again when they come back as history.
"""

from __future__ import annotations

import hashlib
from typing import Any

from responsa.protocol.errors import invalid
from responsa.tools.base import ClientToolset, ItemKind, ToolRequest, ToolRoute, Toolset, ToolType
from responsa.tools.client_calls import only_keys, tool_name
from responsa.tools.custom import CUSTOM_TOOL_CALL
from responsa.tools.custom import _decode as custom_decode
from responsa.tools.custom import _function as custom_function
from responsa.tools.custom import _parse as parse_custom
from responsa.tools.functions import FUNCTION_CALL
from responsa.tools.functions import parse_tool as parse_function

Item = dict[str, Any]
_MEMBER_KEYS = frozenset({"type", "name", "description", "parameters", "strict", "defer_loading",
                          "allowed_callers", "output_schema"})


def flat_name(namespace: str, name: str) -> str:
    """The model-facing name of ``name`` in ``namespace``."""
    full = f"{namespace}__{name}"
    if len(full) <= 64:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[:55]}_{digest}"


def parse_tool(tool: dict[str, Any], param: str) -> dict[str, Any]:
    only_keys(tool, param, frozenset({"type", "name", "description", "tools"}))
    name = tool_name(tool, param)
    if tool.get("description") is not None and not isinstance(tool["description"], str):
        raise invalid(f"Invalid type for '{param}.description': expected a string.", f"{param}.description",
                      "invalid_type")
    members = tool.get("tools")
    if not isinstance(members, list) or not members:
        raise invalid(f"Invalid '{param}.tools': expected a non-empty array of function or custom tools.",
                      f"{param}.tools")
    parsed = []
    for j, member in enumerate(members):
        where = f"{param}.tools[{j}]"
        if not isinstance(member, dict) or member.get("type") not in ("function", "custom"):
            raise invalid(f"Invalid '{where}.type': a namespace holds 'function' and 'custom' tools.",
                          f"{where}.type")
        if member["type"] == "custom":
            parsed.append(parse_custom(member, where))
            continue
        only_keys(member, where, _MEMBER_KEYS)
        core = parse_function({k: v for k, v in member.items() if k in ("type", "name", "description",
                                                                          "parameters", "strict")}, where)
        parsed.append(core)
    names = [m["name"] for m in parsed]
    if len(set(names)) != len(names):
        raise invalid(f"Duplicate tool name in '{param}.tools'.", f"{param}.tools")
    return {"type": "namespace", "name": name, "description": tool.get("description"), "tools": parsed}


def _flatten(items: list[Item]) -> list[Item]:
    out = []
    for item in items:
        ns = item.get("namespace")
        if ns and item.get("type") in ("function_call", "custom_tool_call"):
            item = {k: v for k, v in item.items() if k != "namespace"}
            item["name"] = flat_name(ns, item["name"])
        out.append(item)
    return out


class NamespaceToolset(ClientToolset):
    def __init__(self, entries: list[dict[str, Any]], taken: set[str]) -> None:
        super().__init__()
        for entry in entries:
            for member in entry["tools"]:
                name = flat_name(entry["name"], member["name"])
                if name in taken:
                    raise invalid(f"The namespace {entry['name']!r} member {member['name']!r} clashes with the "
                                  f"tool {name!r}.", "tools")
                taken.add(name)
                prefix = f"[{entry['name']}] {entry.get('description') or ''}".strip()
                if member["type"] == "custom":
                    fn = custom_function(member)
                    fn["description"] = f"{prefix}\n{fn['description']}"
                    decode = _custom(member)
                    kind: ItemKind = CUSTOM_TOOL_CALL
                else:
                    fn = {"name": name, "description": f"{prefix}\n{member.get('description') or ''}".strip(),
                          "parameters": member.get("parameters") or {"type": "object", "properties": {}},
                          "strict": bool(member.get("strict"))}
                    decode, kind = None, FUNCTION_CALL
                fn["name"] = name
                self._definitions.append({"type": "function", "strict": False, **fn})
                self._routes[name] = ToolRoute(kind, {"name": member["name"], "namespace": entry["name"]},
                                               decode=decode)

    def model_view(self, items: list[Item]) -> list[Item]:
        return _flatten(items)


def _custom(member: dict[str, Any]) -> Any:
    return lambda arguments: custom_decode(member, arguments)


async def _build(req: ToolRequest) -> Toolset | None:
    if not req.entries:
        return None
    return NamespaceToolset([entry for _, entry in req.entries], set(req.function_names))


TOOL_TYPE = ToolType(name="namespace", tool_types=("namespace",), parse_tool=parse_tool, model_view=_flatten,
                     view_types=("function_call", "custom_tool_call"), build=_build)
