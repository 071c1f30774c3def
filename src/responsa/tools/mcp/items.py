"""MCP items: accepted as input (a client replaying a conversation, or
answering an approval request), turned into what a model understands, and
built from tool results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from responsa.protocol.errors import invalid
from responsa.protocol.ids import new_id
from responsa.protocol.types import Item
from responsa.tools.base import ItemKind, Normaliser

MAX_OUTPUT_CHARS = 100_000
"""Tool outputs beyond this are cut: they go into the model's context and
the store, and one misbehaving server must not blow up either."""

DENIED = "The user denied this tool call."


def _text(raw: dict[str, Any], key: str, param: str, *, optional: bool = False) -> str | None:
    value = raw.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid type for '{param}.{key}': expected a string.", f"{param}.{key}", "invalid_type")
    return value


def _approval_response(raw: dict[str, Any], param: str) -> Item:
    approve = raw.get("approve")
    if not isinstance(approve, bool):
        raise invalid(f"Invalid type for '{param}.approve': expected a boolean.", f"{param}.approve",
                      "invalid_type")
    item: Item = {"type": "mcp_approval_response", "id": _text(raw, "id", param, optional=True) or new_id("mcpa"),
                  "approval_request_id": _text(raw, "approval_request_id", param), "approve": approve}
    reason = _text(raw, "reason", param, optional=True)
    if reason is not None:
        item["reason"] = reason
    return item


def _approval_request(raw: dict[str, Any], param: str) -> Item:
    return {"type": "mcp_approval_request", "id": _text(raw, "id", param),
            "server_label": _text(raw, "server_label", param), "name": _text(raw, "name", param),
            "arguments": _text(raw, "arguments", param)}


def _call(raw: dict[str, Any], param: str) -> Item:
    item: Item = {"type": "mcp_call", "id": _text(raw, "id", param), "server_label": _text(raw, "server_label", param),
                  "name": _text(raw, "name", param), "arguments": _text(raw, "arguments", param),
                  "output": _text(raw, "output", param, optional=True), "error": raw.get("error"),
                  "status": raw.get("status") or "completed"}
    if raw.get("approval_request_id") is not None:
        item["approval_request_id"] = _text(raw, "approval_request_id", param)
    return item


_LISTED_TOOL_FIELDS = (("description", str), ("input_schema", dict), ("annotations", dict))


def _list_tools(raw: dict[str, Any], param: str) -> Item:
    """A replayed listing is reused instead of listing the server again, so
    its tools are checked as strictly as a server's answer would be used."""
    tools = raw.get("tools")
    if not isinstance(tools, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools):
        raise invalid(f"Invalid value for '{param}.tools': expected an array of tools with names.",
                      f"{param}.tools")
    for i, tool in enumerate(tools):
        for key, kind in _LISTED_TOOL_FIELDS:
            if tool.get(key) is not None and not isinstance(tool[key], kind):
                raise invalid(f"Invalid type for '{param}.tools[{i}].{key}': expected "
                              f"{'a string' if kind is str else 'an object'}.", f"{param}.tools[{i}].{key}",
                              "invalid_type")
    return {"type": "mcp_list_tools", "id": _text(raw, "id", param), "server_label": _text(raw, "server_label", param),
            "tools": tools, "error": raw.get("error")}


INPUT_ITEMS: dict[str, Normaliser] = {"mcp_approval_response": _approval_response,
                                      "mcp_approval_request": _approval_request, "mcp_call": _call,
                                      "mcp_list_tools": _list_tools}
"""MCP item types a client may send as input (registered by ``tools.mcp.TOOL_TYPE``)."""


def _call_outcome(item: Item) -> tuple[str, ...]:
    status = item.get("status")
    return (f"response.mcp_call.{status}",) if status in ("completed", "failed") else ()


def _listing_outcome(item: Item) -> tuple[str, ...]:
    return ("response.mcp_list_tools.failed" if item.get("error") else "response.mcp_list_tools.completed",)


MCP_CALL = ItemKind(
    "mcp_call", "mcp", stream="arguments", delta="response.mcp_call_arguments.delta",
    done="response.mcp_call_arguments.done", opened=("response.mcp_call.in_progress",), finished=_call_outcome,
    outcomes=("response.mcp_call.completed", "response.mcp_call.failed"), results=("output", "error"),
    executes=True)
"""A call the server runs on an MCP server after the model step that made it."""

MCP_APPROVAL_REQUEST = ItemKind("mcp_approval_request", "mcpr", status=False, stream="arguments")
"""A call that waits for the client's ``mcp_approval_response``: it ends the turn."""

MCP_LIST_TOOLS = ItemKind(
    "mcp_list_tools", "mcpl", status=False, opened=("response.mcp_list_tools.in_progress",),
    finished=_listing_outcome, outcomes=("response.mcp_list_tools.completed", "response.mcp_list_tools.failed"),
    results=("error",), blank={"tools": []})
"""A server's tool listing, made before the first model call."""


def has_mcp_items(items: list[Item]) -> bool:
    return any(it["type"].startswith("mcp_") for it in items)


def model_view(items: list[Item], exposed: Callable[[str, str], str]) -> list[Item]:
    """MCP items as the function calls and outputs every provider
    understands. ``exposed(server_label, tool)`` is the name the model knows
    the tool by. Approved requests show up through their ``mcp_call``;
    unanswered ones are left out; denied ones become a call whose output
    says so."""
    requests = {it["id"]: it for it in items if it["type"] == "mcp_approval_request"}
    out: list[Item] = []
    for it in items:
        kind = it["type"]
        if kind == "mcp_call":
            out += _pair(it["id"], exposed(it["server_label"], it["name"]), it["arguments"], _seen_output(it))
        elif kind == "mcp_approval_response" and not it["approve"]:
            req = requests.get(it["approval_request_id"])
            if req is not None:
                reason = f" Reason: {it['reason']}" if it.get("reason") else ""
                out += _pair(req["id"], exposed(req["server_label"], req["name"]), req["arguments"],
                             DENIED + reason)
        elif not kind.startswith("mcp_"):
            out.append(it)
    return out


def _pair(call_id: str, name: str, arguments: str, output: str) -> list[Item]:
    return [{"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id, "name": name,
             "arguments": arguments, "status": "completed"},
            {"type": "function_call_output", "id": f"fco_{call_id}", "call_id": call_id, "output": output,
             "status": "completed"}]


def _seen_output(call: Item) -> str:
    if call.get("output") is not None:
        return str(call["output"])
    error = call.get("error")
    if isinstance(error, dict):
        detail = error.get("message") or content_text(error.get("content") or [])
        return f"Error: {detail}"
    if error:
        return f"Error: {error}"
    return "The tool call did not run (the response stopped before it)."


def cap(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return text[:MAX_OUTPUT_CHARS] + f"\n[output truncated: {len(text) - MAX_OUTPUT_CHARS} more characters]"


def content_text(blocks: list[Any]) -> str:
    """MCP content blocks as one string: text as is, anything else as JSON."""
    parts = []
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            parts.append(orjson.dumps(block).decode())
    return "\n".join(parts)
