"""``computer`` / ``computer_use_preview``: the client drives a screen.

Models see ``computer(action)`` (click, double_click, drag, keypress, move,
screenshot, scroll, type, wait); the call becomes a ``computer_call`` item
and the client's ``computer_call_output`` screenshot goes back to the model
as an image in the function's output. Whether a model can use it well is up
to the model (it must read screenshots); the round trip works for all.
"""

from __future__ import annotations

from typing import Any

from openai.types.responses.response_computer_tool_call_param import ResponseComputerToolCallParam
from openai.types.responses.response_input_item_param import ComputerCallOutput

from responsa.protocol.errors import invalid
from responsa.tools.base import ItemKind
from responsa.tools.client_calls import ClientCall, arguments, dumps, only_keys, sdk_normaliser, tool_type

COMPUTER_CALL = ItemKind("computer_call", "cu", call_id=True,
                         blank={"pending_safety_checks": [], "action": {"type": "screenshot"}})
_ACTIONS: dict[str, tuple[str, ...]] = {
    "click": ("button", "x", "y", "keys"), "double_click": ("x", "y", "keys"), "drag": ("path", "keys"),
    "keypress": ("keys",), "move": ("x", "y", "keys"), "screenshot": (), "scroll": ("x", "y", "scroll_x",
                                                                                   "scroll_y", "keys"),
    "type": ("text",), "wait": ()}
_REQUIRED: dict[str, dict[str, Any]] = {
    "click": {"button": "left", "x": 0, "y": 0}, "double_click": {"x": 0, "y": 0}, "drag": {"path": []},
    "keypress": {"keys": []}, "move": {"x": 0, "y": 0}, "scroll": {"x": 0, "y": 0, "scroll_x": 0, "scroll_y": 0},
    "type": {"text": ""}}


def _parse(tool: dict[str, Any], param: str) -> dict[str, Any]:
    if tool.get("type") == "computer":
        only_keys(tool, param, frozenset({"type"}))
        return {"type": "computer"}
    only_keys(tool, param, frozenset({"type", "display_width", "display_height", "environment"}))
    for key in ("display_width", "display_height"):
        if not isinstance(tool.get(key), int) or tool[key] <= 0:
            raise invalid(f"Invalid '{param}.{key}': expected a positive integer.", f"{param}.{key}")
    if tool.get("environment") not in ("windows", "mac", "linux", "ubuntu", "browser"):
        raise invalid(f"Invalid '{param}.environment': supported values are 'windows', 'mac', 'linux', 'ubuntu' "
                      "and 'browser'.", f"{param}.environment")
    return dict(tool)


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    screen = ""
    if "display_width" in tool:
        screen = f" The screen is {tool['display_width']}x{tool['display_height']} ({tool['environment']})."
    return {"name": "computer", "description": "Act on the user's screen; the result is a screenshot." + screen,
            "parameters": {"type": "object", "properties": {"action": {"type": "object", "properties": {
                "type": {"type": "string", "enum": list(_ACTIONS)},
                "x": {"type": "integer"}, "y": {"type": "integer"},
                "button": {"type": "string", "enum": ["left", "right", "wheel", "back", "forward"]},
                "keys": {"type": "array", "items": {"type": "string"}}, "text": {"type": "string"},
                "scroll_x": {"type": "integer"}, "scroll_y": {"type": "integer"},
                "path": {"type": "array", "items": {"type": "object", "properties": {
                    "x": {"type": "integer"}, "y": {"type": "integer"}}}}},
                "required": ["type"]}}, "required": ["action"]}}


def _decode(tool: dict[str, Any], raw: str) -> dict[str, Any]:
    args = arguments(raw)
    nested = args.get("action")
    given: dict[str, Any] = nested if isinstance(nested, dict) else args
    kind = str(given.get("type")) if given.get("type") in _ACTIONS else "screenshot"
    action = {"type": kind, **_REQUIRED.get(kind, {})}
    action.update({k: given[k] for k in _ACTIONS[kind] if given.get(k) is not None})
    return {"action": action, "pending_safety_checks": []}


def _output(item: dict[str, Any]) -> Any:
    shot = item.get("output") or {}
    if shot.get("image_url"):
        return [{"type": "input_image", "image_url": shot["image_url"], "detail": "auto"}]
    return "Screenshot taken (no image was sent back)."


COMPUTER = ClientCall(
    tool_type="computer", also=("computer_use_preview",), kind=COMPUTER_CALL, output_type="computer_call_output",
    parse_tool=_parse, function=_function, decode=_decode,
    encode=lambda item: dumps({"action": item.get("action") or {}}), output=_output,
    input_items={"computer_call": sdk_normaliser(ResponseComputerToolCallParam, "cu"),
                 "computer_call_output": sdk_normaliser(ComputerCallOutput, "cuo")})

TOOL_TYPE = tool_type(COMPUTER)
