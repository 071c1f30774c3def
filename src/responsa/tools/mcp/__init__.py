"""MCP servers run by Responsa on the model's behalf: both the OpenAI form
(``tools: [{"type": "mcp", ...}]``) and the reference form (``mcp_servers``
plus ``credentials``). ``TOOL_TYPE`` is its registry entry."""

from __future__ import annotations

from typing import Any

from responsa.protocol.types import Item
from responsa.tools.base import ToolType
from responsa.tools.mcp import items, specs, toolset


def _response_fields() -> dict[str, Any]:
    """The reference client's summary fields, on every Response that uses MCP."""
    return {"mcp_tool_results": [], "tools_executed": [], "mcp_server_errors": {}}


def _model_view(found: list[Item]) -> list[Item]:
    return items.model_view(found, lambda label, name: name) if items.has_mcp_items(found) else found


TOOL_TYPE = ToolType(
    name="mcp",
    tool_types=("mcp",),
    parse_tool=lambda tool, param: specs.redacted_tool(tool),
    redact=specs.redacted_tool,
    item_kinds=(items.MCP_CALL, items.MCP_APPROVAL_REQUEST, items.MCP_LIST_TOOLS),
    input_items=items.INPUT_ITEMS,
    model_view=_model_view,
    build=toolset.build,
    response_fields=_response_fields,
)
