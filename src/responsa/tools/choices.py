"""``tool_choice`` for the tool types models see as functions.

``{"type": "shell"}``, ``{"type": "apply_patch"}``, ``{"type": "custom",
"name": ...}``, ``{"type": "web_search_preview"}``, ``{"type":
"computer_use_preview"}``... (and the same inside ``allowed_tools``) force
or allow the function that stands for that tool, so every provider honours
them; the Response echoes the choice as the client wrote it.
"""

from __future__ import annotations

from typing import Any

from responsa.protocol.errors import invalid
from responsa.tools.namespace import flat_name

_FUNCTION_OF_TYPE = {
    "shell": "shell", "local_shell": "local_shell", "apply_patch": "apply_patch", "tool_search": "tool_search",
    "computer": "computer", "computer_use_preview": "computer", "computer_use": "computer",
    "web_search": "web_search", "web_search_2025_08_26": "web_search", "web_search_preview": "web_search",
    "web_search_preview_2025_03_11": "web_search", "file_search": "file_search"}


def function_names(tools: list[Any]) -> list[str]:
    """The function names the non-function entries of ``tools`` are shown as."""
    names: list[str] = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        ttype = tool.get("type")
        if not isinstance(ttype, str):
            continue
        if ttype in _FUNCTION_OF_TYPE:
            names.append(_FUNCTION_OF_TYPE[ttype])
        elif ttype == "custom" and isinstance(tool.get("name"), str):
            names.append(tool["name"])
        elif ttype == "namespace" and isinstance(tool.get("name"), str):
            names += [flat_name(tool["name"], m["name"]) for m in tool.get("tools") or []
                      if isinstance(m, dict) and isinstance(m.get("name"), str)]
    return names


def _one(choice: Any, names: list[str], param: str) -> Any:
    if not isinstance(choice, dict):
        return choice
    ctype = choice.get("type")
    if not isinstance(ctype, str):
        return choice  # rejected with a 400 by the generic tool_choice check
    if ctype in _FUNCTION_OF_TYPE:
        name = _FUNCTION_OF_TYPE[ctype]
    elif ctype == "custom":
        name = str(choice.get("name"))
    else:
        return choice
    if name not in names:
        raise invalid(f"'{param}' chooses a {ctype!r} tool, but 'tools' has none.", param)
    return {"type": "function", "name": name}


def as_function_choice(choice: Any, tools: list[Any]) -> tuple[Any, list[str]]:
    """``choice`` with native tool types named as the functions models see,
    and those function names (valid ``tool_choice`` targets)."""
    names = function_names(tools)
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools" and isinstance(choice.get("tools"), list):
        return {**choice, "tools": [_one(t, names, f"tool_choice.tools[{j}]")
                                    for j, t in enumerate(choice["tools"])]}, names
    return _one(choice, names, "tool_choice"), names
