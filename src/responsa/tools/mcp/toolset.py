"""The MCP ``Toolset`` (``tools.base``): the MCP servers of one response.

It lists each server's tools (or reuses the listing an earlier turn of the
chain already made), shows the model the allowed ones as function tools,
runs the calls the model makes (in parallel when allowed), turns approval
answers into calls or denials, and keeps the reference client's summary
fields (``mcp_tool_results``, ``tools_executed``, ``mcp_server_errors``) on
the response. Server failures become items and summary entries, never
exceptions: the loop goes on without that server.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import mcp_types
import orjson
from mcp.shared.exceptions import MCPError

from responsa.observability.instrument import record_tool_call
from responsa.protocol.errors import invalid
from responsa.protocol.ids import new_id
from responsa.protocol.types import Event, Item
from responsa.tools.base import Emitter, ToolRequest, ToolRoute
from responsa.tools.mcp import items as mcp_items
from responsa.tools.mcp.approvals import allowed, answered_requests, needs_approval
from responsa.tools.mcp.client import MCPUnavailable, Pool, describe
from responsa.tools.mcp.items import MCP_APPROVAL_REQUEST, MCP_CALL, MCP_LIST_TOOLS
from responsa.tools.mcp.specs import (
    ServerSpec,
    apply_credentials,
    openai_server,
    parse_credentials,
    reference_servers,
)
from responsa.tools.mcp.urlguard import check_url

log = logging.getLogger("responsa.mcp")

_closing: set[asyncio.Task[None]] = set()
"""Session shutdowns in flight (a reference keeps them from being garbage-collected)."""
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_RECOMMEND = {
    "connection_failed": "Check that the server URL is right and the server is running.",
    "timeout": "The server is slow or unreachable; try again later.",
    "list_failed": "The server rejected the request; check the credentials for this server.",
}


def _dump(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def _tool_json(tool: mcp_types.Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema,
            "annotations": _dump(tool.annotations) if tool.annotations is not None else None}


def _read_only(tool: dict[str, Any]) -> bool:
    ann = tool.get("annotations") or {}
    return bool(ann.get("readOnlyHint") or ann.get("read_only"))


class McpToolset:
    def __init__(self, specs: list[ServerSpec], *, answers: list[Item], function_names: set[str],
                 parallel: bool) -> None:
        self.specs = {s.label: s for s in specs}
        self.pool = Pool(specs)
        self._answers = answers
        self._function_names = function_names
        self._parallel = parallel
        self._routes: dict[str, ToolRoute] = {}
        self._exposed: dict[tuple[str, str], str] = {}
        self._definitions: list[dict[str, Any]] = []
        self._response: dict[str, Any] = {}
        self._results: dict[str, dict[str, Any]] = {}

    # -- the Toolset protocol ------------------------------------------------

    def routes(self) -> dict[str, ToolRoute]:
        return self._routes

    def definitions(self) -> list[dict[str, Any]]:
        return self._definitions

    def model_view(self, items: list[Item]) -> list[Item]:
        return mcp_items.model_view(items, lambda label, name: self._exposed.get((label, name), name))

    async def prepare(self, emit: Emitter, context: list[Item]) -> AsyncIterator[Event]:
        self._response = emit.response
        listings: dict[str, list[dict[str, Any]]] = {
            it["server_label"]: it["tools"] for it in context
            if it["type"] == "mcp_list_tools" and not it.get("error") and it["server_label"] in self.specs}
        fresh = [s for s in self.specs.values() if s.label not in listings]
        opened = []
        for spec in fresh:
            item: Item = {"type": "mcp_list_tools", "id": new_id("mcpl"), "server_label": spec.label, "tools": []}
            index, events = emit.open_item(MCP_LIST_TOOLS, item)
            for ev in events:
                yield ev
            opened.append((index, item))
        results = await asyncio.gather(*(self._list(spec) for spec in fresh))
        for (index, item), (tools, error) in zip(opened, results, strict=True):
            item["tools"] = tools
            if error is not None:
                item["error"] = error
            else:
                listings[item["server_label"]] = tools
            for ev in emit.finish_item(index, item):
                yield ev
        self._expose(listings)
        approved = []
        requests = {it["id"]: it for it in context if it["type"] == "mcp_approval_request"}
        for answer in self._answers:
            req = requests[answer["approval_request_id"]]
            if answer["approve"]:
                call: Item = {"type": "mcp_call", "id": new_id("mcp"), "server_label": req["server_label"],
                        "name": req["name"], "arguments": req["arguments"], "status": "in_progress",
                        "approval_request_id": req["id"]}
                index, events = emit.open_item(MCP_CALL, call)
                for ev in events:
                    yield ev
                approved.append((index, call))
        async for ev in self.execute(approved, emit):
            yield ev
        context[:] = [*self.model_view(context), *self.model_view([item for _, item in approved])]

    async def execute(self, calls: list[tuple[int, Item]], emit: Emitter) -> AsyncIterator[Event]:
        if not calls:
            return
        if not self._parallel or len(calls) == 1:
            for index, item in calls:
                await self._call(item)
                self._record(item)
                for ev in emit.finish_item(index, item):
                    yield ev
            return
        tasks = [asyncio.create_task(self._call(item)) for _, item in calls]
        try:
            for (index, item), task in zip(calls, tasks, strict=True):
                await task
                self._record(item)
                for ev in emit.finish_item(index, item):
                    yield ev
        finally:
            for task in tasks:
                task.cancel()

    async def aclose(self) -> None:
        """Hang up in the background: some transports take a while to shut
        down, and the client must not wait for that to get its terminal event."""
        task = asyncio.create_task(self.pool.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    # -- internals -----------------------------------------------------------

    def _server_error(self, label: str, code: str, message: str) -> None:
        self._response["mcp_server_errors"][label] = {"message": message, "code": code,
                                                      "recommendation": _RECOMMEND.get(code)}

    async def _list(self, spec: ServerSpec) -> tuple[list[dict[str, Any]], str | None]:
        try:
            tools = await self.pool.get(spec.label).list_tools()
        except Exception as exc:  # any server failure is reported, never raised
            code = "timeout" if isinstance(exc, TimeoutError) else \
                "connection_failed" if isinstance(exc, MCPUnavailable) else "list_failed"
            message = f"Error listing tools of MCP server {spec.label!r}: {describe(exc)}"
            log.warning("%s", message)
            self._server_error(spec.label, code, message)
            return [], message
        return [_tool_json(t) for t in tools], None

    def _expose(self, listings: dict[str, list[dict[str, Any]]]) -> None:
        """Model-facing names: the tool's own name when unique among all
        tools of the request, else ``<label>__<name>``."""
        visible = [(label, tool) for label, tools in listings.items() for tool in tools
                   if allowed(self.specs[label].allowed_tools, tool["name"], _read_only(tool))]
        counts = Counter([tool["name"] for _, tool in visible] + list(self._function_names))
        for label, tool in visible:
            name = tool["name"]
            exposed = name if counts[name] == 1 and re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name) else \
                f"{_UNSAFE.sub('_', label)}__{_UNSAFE.sub('_', name)}"[:64]
            spec = self.specs[label]
            self._exposed[(label, name)] = exposed
            approval = needs_approval(spec.require_approval, name, _read_only(tool))
            self._routes[exposed] = ToolRoute(MCP_APPROVAL_REQUEST if approval else MCP_CALL,
                                              {"server_label": label, "name": name})
            description = tool.get("description") or ""
            if spec.description:
                description = f"{description} (MCP server {label}: {spec.description})".strip()
            self._definitions.append({"type": "function", "name": exposed, "description": description or None,
                                      "parameters": tool.get("input_schema") or {"type": "object",
                                                                                 "properties": {}},
                                      "strict": False})

    async def _call(self, item: Item) -> None:
        """Run one ``mcp_call`` item and complete it in place."""
        label, name = item["server_label"], item["name"]
        started = time.monotonic()
        args: Any = None
        try:
            args = orjson.loads(item["arguments"] or "{}")
            if not isinstance(args, dict):
                raise ValueError("not an object")
        except ValueError:
            self._finish(item, args, started, error={
                "type": "mcp_protocol_error", "code": -32602,
                "message": "The tool arguments are not a JSON object."})
            return
        if label not in self.specs:
            self._finish(item, args, started, error={
                "type": "mcp_protocol_error", "code": -32602,
                "message": f"MCP server {label!r} is not among this request's tools."})
            return
        try:
            result = await self.pool.get(label).call_tool(name, args)
        except MCPError as exc:
            self._finish(item, args, started, error={"type": "mcp_protocol_error", "code": exc.code,
                                                     "message": exc.message})
            return
        except Exception as exc:  # the loop goes on without this server
            code = "timeout" if isinstance(exc, TimeoutError) else "connection_failed"
            message = f"Error calling tool {name!r} on MCP server {label!r}: {describe(exc)}"
            log.warning("%s", message)
            self._server_error(label, code, message)
            self._finish(item, args, started, error={"type": "mcp_protocol_error", "code": -32000,
                                                     "message": message})
            return
        blocks = [_dump(b) for b in result.content]
        if not blocks and result.structured_content is not None:
            blocks = [{"type": "text", "text": orjson.dumps(result.structured_content).decode()}]
        text = mcp_items.cap(mcp_items.content_text(blocks))
        if result.is_error:
            self._finish(item, args, started, error={"type": "mcp_tool_execution_error",
                                                     "content": [{"type": "text", "text": text}]})
        else:
            self._finish(item, args, started, output=text)

    def _finish(self, item: Item, args: Any, started: float, *, output: str | None = None,
                error: dict[str, Any] | None = None) -> None:
        item["output"] = output
        item["error"] = error
        item["status"] = "failed" if error else "completed"
        shown = output if error is None else error.get("message") or mcp_items.content_text(error.get("content", []))
        self._results[item["id"]] = {
            "server_name": item["server_label"], "tool_name": item["name"],
            "arguments": args if isinstance(args, dict) else {}, "result": shown, "is_error": error is not None,
            "duration_ms": int((time.monotonic() - started) * 1000)}
        record_tool_call("mcp", item, args, started)

    def _record(self, item: Item) -> None:
        """Summarise a finished call on the Response, in call order (not the
        order parallel calls happened to finish in)."""
        result = self._results.pop(item["id"])
        self._response["mcp_tool_results"].append(result)
        error = item.get("error")
        if error is None or error["type"] == "mcp_tool_execution_error":
            self._response["tools_executed"].append(item["name"])


async def build(tr: ToolRequest) -> McpToolset | None:
    """The MCP servers of a request, validated (400s) before anything runs;
    ``None`` when the request uses none."""
    req, settings = tr.request, tr.settings
    specs = [openai_server(t, i) for i, t in tr.entries]
    reference: list[ServerSpec] = []
    if req.mcp_servers not in (None, "", []):
        reference = reference_servers(req.mcp_servers, settings.mcp_registry)
    if req.credentials not in (None, []):
        if not reference:
            raise invalid("'credentials' apply to 'mcp_servers', but the request lists none.", "credentials")
        apply_credentials(reference, parse_credentials(req.credentials))
    seen: set[str] = set()
    for spec in [*specs, *reference]:
        if spec.label in seen:
            raise invalid(f"Two MCP servers share the label {spec.label!r}.", spec.param)
        seen.add(spec.label)
        if spec.guard_url and spec.url:
            await check_url(spec.url, settings.mcp_allow_private, spec.param)
            spec.egress_allow = list(settings.mcp_allow_private)
    answers = answered_requests(tr.history, tr.new_items)
    servers = [*specs, *reference]
    if not servers:
        if answers:
            raise invalid("An 'mcp_approval_response' needs the MCP server's tool in 'tools' again.", "tools")
        return None
    return McpToolset(servers, answers=answers, function_names=tr.function_names,
                      parallel=req.parallel_tool_calls is not False)
