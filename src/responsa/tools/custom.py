"""``custom`` tools: free-form text input instead of JSON arguments,
optionally constrained by a grammar (Lark or a regex). Codex's
``apply_patch`` is one (a Lark grammar for its patch format).

Models without custom tools see a function of the same name taking one
string, ``input``; the call becomes a ``custom_tool_call`` whose ``input``
is that string (streamed as ``response.custom_tool_call_input.*`` events),
and the client's ``custom_tool_call_output`` goes back as the function's
output. The grammar is given to the model in the description; an
upstream with native custom tools (``openai-responses``) gets it as is.
"""

from __future__ import annotations

from typing import Any

from openai.types.responses.response_custom_tool_call_output_param import ResponseCustomToolCallOutputParam
from openai.types.responses.response_custom_tool_call_param import ResponseCustomToolCallParam

from responsa.protocol.errors import invalid
from responsa.tools.base import ItemKind
from responsa.tools.client_calls import ClientCall, arguments, dumps, only_keys, sdk_normaliser, tool_name, tool_type

CUSTOM_TOOL_CALL = ItemKind("custom_tool_call", "ctc", status=False, call_id=True, stream="input",
                            delta="response.custom_tool_call_input.delta", done="response.custom_tool_call_input.done")


def _parse(tool: dict[str, Any], param: str) -> dict[str, Any]:
    only_keys(tool, param, frozenset({"type", "name", "description", "format", "defer_loading", "allowed_callers"}))
    tool_name(tool, param)
    if tool.get("description") is not None and not isinstance(tool["description"], str):
        raise invalid(f"Invalid type for '{param}.description': expected a string.", f"{param}.description",
                      "invalid_type")
    fmt = tool.get("format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "grammar"):
            raise invalid(f"Invalid '{param}.format': expected {{\"type\": \"text\"}} or a grammar "
                          "{\"type\": \"grammar\", \"syntax\": \"lark\"|\"regex\", \"definition\": ...}.",
                          f"{param}.format")
        if fmt["type"] == "grammar":
            if fmt.get("syntax") not in ("lark", "regex"):
                raise invalid(f"Invalid '{param}.format.syntax': supported values are 'lark' and 'regex'.",
                              f"{param}.format.syntax")
            if not isinstance(fmt.get("definition"), str) or not fmt["definition"]:
                raise invalid(f"Missing required parameter: '{param}.format.definition'.",
                              f"{param}.format.definition", "missing_required_parameter")
    return dict(tool)


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    description = tool.get("description") or ""
    fmt = tool.get("format") or {}
    if fmt.get("type") == "grammar":
        description += (f"\n\nThe input must match this {fmt['syntax']} grammar exactly:\n{fmt['definition']}")
    return {"name": tool["name"], "description": (description + "\n\nPass the raw input text in 'input'; do not "
            "wrap it in any other format.").strip(),
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}}


def _decode(tool: dict[str, Any], raw: str) -> dict[str, Any]:
    args = arguments(raw)
    value = args.get("input")
    if isinstance(value, str):
        return {"input": value}
    # A model that answered with the free-form text itself (or other JSON).
    return {"input": raw if not args else dumps(args)}


def _output(item: dict[str, Any]) -> Any:
    return item.get("output", "")


CUSTOM = ClientCall(
    tool_type="custom", kind=CUSTOM_TOOL_CALL, output_type="custom_tool_call_output", parse_tool=_parse,
    function=_function, decode=_decode, encode=lambda item: dumps({"input": item.get("input", "")}),
    output=_output, name_of_call=lambda item: str(item.get("name", "")),
    input_items={"custom_tool_call": sdk_normaliser(ResponseCustomToolCallParam, "ctc"),
                 "custom_tool_call_output": sdk_normaliser(ResponseCustomToolCallOutputParam, "ctco")})

TOOL_TYPE = tool_type(CUSTOM)
