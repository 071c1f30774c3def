"""``apply_patch``: file edits the client applies (create, update with a
V4A diff, delete). Models see ``apply_patch(operation)``; the call becomes
an ``apply_patch_call`` item, the client's ``apply_patch_call_output``
(completed or failed, with a message) goes back as the function's output.
"""

from __future__ import annotations

from typing import Any

from openai.types.responses.response_input_item_param import ApplyPatchCall, ApplyPatchCallOutput

from responsa.tools.base import ItemKind
from responsa.tools.client_calls import ClientCall, arguments, dumps, only_keys, sdk_normaliser, tool_type

APPLY_PATCH_CALL = ItemKind("apply_patch_call", "apc", call_id=True,
                            blank={"operation": {"type": "update_file", "path": "", "diff": ""}})
_OPERATIONS = ("create_file", "update_file", "delete_file")


def _parse(tool: dict[str, Any], param: str) -> dict[str, Any]:
    only_keys(tool, param, frozenset({"type", "allowed_callers"}))
    return dict(tool)


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    return {"name": "apply_patch", "description": "Create, update or delete one file on the user's machine. "
            "For create_file the diff is the new content, each line prefixed with '+'; for update_file it is a "
            "V4A diff ('@@' context lines, '-' removed, '+' added).",
            "parameters": {"type": "object", "properties": {"operation": {"type": "object", "properties": {
                "type": {"type": "string", "enum": list(_OPERATIONS)}, "path": {"type": "string"},
                "diff": {"type": "string"}}, "required": ["type", "path"]}}, "required": ["operation"]}}


def _decode(tool: dict[str, Any], raw: str) -> dict[str, Any]:
    op = arguments(raw).get("operation")
    op = op if isinstance(op, dict) else arguments(raw)
    kind = op.get("type") if op.get("type") in _OPERATIONS else "update_file"
    operation: dict[str, Any] = {"type": kind, "path": str(op.get("path") or "")}
    if kind != "delete_file":
        operation["diff"] = str(op.get("diff") or "")
    return {"operation": operation}


def _output(item: dict[str, Any]) -> str:
    return f"{item.get('status', 'completed')}: {item.get('output') or ''}".strip()


APPLY_PATCH = ClientCall(
    tool_type="apply_patch", kind=APPLY_PATCH_CALL, output_type="apply_patch_call_output", parse_tool=_parse,
    function=_function, decode=_decode, encode=lambda item: dumps({"operation": item.get("operation") or {}}),
    output=_output,
    input_items={"apply_patch_call": sdk_normaliser(ApplyPatchCall, "apc"),
                 "apply_patch_call_output": sdk_normaliser(ApplyPatchCallOutput, "apco")})

TOOL_TYPE = tool_type(APPLY_PATCH)
