"""Turns provider-neutral ``ModelEvent``s into the Responses event stream.

This is the only place that assigns item ids, output/content indexes and
sequence numbers, so every provider gets the identical event taxonomy and a
streamed and a non-streamed response can never disagree.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from responsa.protocol.ids import new_id
from responsa.protocol.response import Response
from responsa.providers import base as m

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolRoute:
    """A tool name the model sees that really belongs to an MCP server, so
    the builder makes an ``mcp_call`` (or ``mcp_approval_request``) item for
    it instead of a client-side ``function_call``."""

    server_label: str
    name: str
    approval: bool = False


class EventBuilder:
    """Accumulates output items on ``response`` while producing events.

    One builder lives for a whole response, across every model step of the
    agent loop, so indexes and sequence numbers continue across steps.
    """

    def __init__(self, response: Response, *, obfuscate: bool = False) -> None:
        self.response = response
        self.output: list[dict[str, Any]] = response["output"]
        self.seq = 0
        self._obfuscate = obfuscate
        self._message: dict[str, Any] | None = None
        self._text: list[str] = []
        self._logprobs: list[dict[str, Any]] = []
        self._part_type = "output_text"
        self._reasoning: dict[str, Any] | None = None
        self._reasoning_text: list[str] = []
        self._reasoning_summary = False
        self._calls: dict[int, dict[str, Any]] = {}
        self._call_args: dict[int, list[str]] = {}
        self.routes: dict[str, ToolRoute] = {}
        self.single_call = False
        """``parallel_tool_calls=false``: keep only the first call of a model
        step; a provider that sends more anyway has the extras dropped before
        any event is emitted for them."""
        self._step_calls = 0
        self._server_calls: list[tuple[int, dict[str, Any]]] = []

    def event(self, type: str, **fields: Any) -> Event:
        ev = {"type": type, "sequence_number": self.seq, **fields}
        self.seq += 1
        return ev

    def snapshot(self, type: str) -> Event:
        """A lifecycle event carrying the response as it is now."""
        return self.event(type, response={**self.response, "output": list(self.output)})

    def _pad(self, ev: Event, delta: str) -> Event:
        if self._obfuscate:
            ev["obfuscation"] = secrets.token_urlsafe(max(1, 12 - len(delta)))[: max(1, 16 - len(delta))]
        return ev

    # -- items -------------------------------------------------------------

    def _add(self, item: dict[str, Any]) -> tuple[int, Event]:
        index = len(self.output)
        self.output.append(item)
        return index, self.event("response.output_item.added", output_index=index, item=dict(item))

    def open_item(self, item: dict[str, Any]) -> tuple[int, list[Event]]:
        """Start an item produced outside the model; ``finish_item`` ends it."""
        events = self.close_open()
        index = len(self.output)
        self.output.append(item)
        added = {**item, "status": "in_progress"} if "status" in item else dict(item)
        return index, [*events, self.event("response.output_item.added", output_index=index, item=added)]

    def finish_item(self, index: int, item: dict[str, Any]) -> Event:
        self.output[index] = item
        return self.event("response.output_item.done", output_index=index, item=dict(item))

    def take_server_calls(self) -> list[tuple[int, dict[str, Any]]]:
        """``mcp_call`` items of the last model step: open until executed
        and ended with ``finish_server_call``."""
        calls, self._server_calls = self._server_calls, []
        return calls

    def start_server_call(self, item: dict[str, Any]) -> tuple[int, list[Event]]:
        """An ``mcp_call`` the model did not stream (an approved request)."""
        index, events = self.open_item(item)
        return index, [*events, self.event("response.mcp_call.in_progress", item_id=item["id"],
                                           output_index=index)]

    def finish_server_call(self, index: int, item: dict[str, Any]) -> list[Event]:
        """End an ``mcp_call`` item whose ``status`` the caller has set."""
        events = []
        if item["status"] in ("completed", "failed"):
            events.append(self.event(f"response.mcp_call.{item['status']}", item_id=item["id"],
                                     output_index=index))
        return [*events, self.finish_item(index, item)]

    def feed(self, ev: m.ModelEvent) -> list[Event]:
        if isinstance(ev, m.TextDelta):
            return self._text_delta(ev.text, ev.logprobs, "output_text")
        if isinstance(ev, m.RefusalDelta):
            return self._text_delta(ev.text, None, "refusal")
        if isinstance(ev, m.ReasoningDelta):
            return self._reasoning_delta(ev)
        if isinstance(ev, m.ReasoningDone):
            # Some upstreams send only opaque reasoning (a signature, no text):
            # it still needs an item to round-trip in.
            opened = [] if self._reasoning is not None else self._reasoning_delta(m.ReasoningDelta(""))
            return opened + self._close_reasoning(ev.encrypted_content)
        if isinstance(ev, m.ToolCallStart):
            return self._call_start(ev)
        if isinstance(ev, m.ToolCallDelta):
            call = self._calls.get(ev.index)
            if call is None or not ev.arguments:
                return []
            self._call_args[ev.index].append(ev.arguments)
            kind = call["type"]
            if kind == "mcp_approval_request":
                return []
            etype = "response.mcp_call_arguments.delta" if kind == "mcp_call" else \
                "response.function_call_arguments.delta"
            return [self._pad(self.event(etype, item_id=call["id"], output_index=call["_index"],
                                         delta=ev.arguments), ev.arguments)]
        return []

    def _call_start(self, ev: m.ToolCallStart) -> list[Event]:
        if self.single_call and self._step_calls:
            return []
        self._step_calls += 1
        events = self._close_message() + self._close_reasoning(None)
        route = self.routes.get(ev.name)
        item: dict[str, Any]
        if route is None:
            item = {"type": "function_call", "id": new_id("fc"), "call_id": ev.call_id,
                    "name": ev.name, "arguments": "", "status": "in_progress"}
        elif route.approval:
            item = {"type": "mcp_approval_request", "id": new_id("mcpr"), "server_label": route.server_label,
                    "name": route.name, "arguments": ""}
        else:
            item = {"type": "mcp_call", "id": new_id("mcp"), "server_label": route.server_label,
                    "name": route.name, "arguments": "", "status": "in_progress"}
        index, added = self._add(item)
        item["_index"] = index
        self._calls[ev.index] = item
        self._call_args[ev.index] = []
        events.append(added)
        if item["type"] == "mcp_call":
            events.append(self.event("response.mcp_call.in_progress", item_id=item["id"], output_index=index))
        return events

    def _text_delta(self, text: str, logprobs: list[dict[str, Any]] | None, part_type: str) -> list[Event]:
        events: list[Event] = []
        if self._message is not None and self._part_type != part_type:
            events += self._close_part()
        if self._message is None:
            events += self._close_reasoning(None) + self._close_calls("completed")
            self._message = {"type": "message", "id": new_id("msg"), "status": "in_progress",
                             "role": "assistant", "content": []}
            index, added = self._add(self._message)
            self._message["_index"] = index
            events.append(added)
        if not self._text and not self._part_open:
            self._part_type = part_type
            self._part_open = True
            events.append(self.event("response.content_part.added", item_id=self._message["id"],
                                     output_index=self._message["_index"],
                                     content_index=len(self._message["content"]), part=self._empty_part()))
        if not text:
            return events
        self._text.append(text)
        if logprobs:
            self._logprobs.extend(logprobs)
        if part_type == "refusal":
            ev = self.event("response.refusal.delta", item_id=self._message["id"],
                            output_index=self._message["_index"],
                            content_index=len(self._message["content"]), delta=text)
        else:
            ev = self.event("response.output_text.delta", item_id=self._message["id"],
                            output_index=self._message["_index"],
                            content_index=len(self._message["content"]), delta=text,
                            logprobs=logprobs or [])
        events.append(self._pad(ev, text))
        return events

    _part_open = False

    def _empty_part(self) -> dict[str, Any]:
        if self._part_type == "refusal":
            return {"type": "refusal", "refusal": ""}
        return {"type": "output_text", "text": "", "annotations": [], "logprobs": []}

    def _close_part(self) -> list[Event]:
        msg = self._message
        if msg is None or not self._part_open:
            return []
        text = "".join(self._text)
        ci = len(msg["content"])
        common = {"item_id": msg["id"], "output_index": msg["_index"], "content_index": ci}
        if self._part_type == "refusal":
            part: dict[str, Any] = {"type": "refusal", "refusal": text}
            done = self.event("response.refusal.done", **common, refusal=text)
        else:
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": self._logprobs}
            done = self.event("response.output_text.done", **common, text=text, logprobs=self._logprobs)
        msg["content"].append(part)
        self._text, self._logprobs, self._part_open = [], [], False
        return [done, self.event("response.content_part.done", **common, part=part)]

    def _close_message(self, status: str = "completed") -> list[Event]:
        msg = self._message
        if msg is None:
            return []
        events = self._close_part()
        index = msg.pop("_index")
        msg["status"] = status
        self._message = None
        return [*events, self.event("response.output_item.done", output_index=index, item=dict(msg))]

    def _reasoning_delta(self, ev: m.ReasoningDelta) -> list[Event]:
        events: list[Event] = []
        if self._reasoning is None:
            events += self._close_message() + self._close_calls("completed")
            self._reasoning = {"type": "reasoning", "id": new_id("rs"), "summary": [], "content": []}
            self._reasoning_summary = ev.summary
            index, added = self._add(self._reasoning)
            self._reasoning["_index"] = index
            events.append(added)
            if ev.summary:
                events.append(self.event("response.reasoning_summary_part.added",
                                         item_id=self._reasoning["id"], output_index=index, summary_index=0,
                                         part={"type": "summary_text", "text": ""}))
        r = self._reasoning
        self._reasoning_text.append(ev.text)
        if self._reasoning_summary:
            events.append(self.event("response.reasoning_summary_text.delta", item_id=r["id"],
                                     output_index=r["_index"], summary_index=0, delta=ev.text))
        else:
            events.append(self.event("response.reasoning.delta", item_id=r["id"],
                                     output_index=r["_index"], content_index=0, delta=ev.text))
        return events

    def _close_reasoning(self, encrypted: str | None) -> list[Event]:
        r = self._reasoning
        if r is None:
            return []
        text = "".join(self._reasoning_text)
        index = r.pop("_index")
        events: list[Event] = []
        if self._reasoning_summary:
            part = {"type": "summary_text", "text": text}
            r["summary"] = [part]
            del r["content"]
            events.append(self.event("response.reasoning_summary_text.done", item_id=r["id"],
                                     output_index=index, summary_index=0, text=text))
            events.append(self.event("response.reasoning_summary_part.done", item_id=r["id"],
                                     output_index=index, summary_index=0, part=part))
        else:
            r["content"] = [{"type": "reasoning_text", "text": text}]
            events.append(self.event("response.reasoning.done", item_id=r["id"], output_index=index,
                                     content_index=0, text=text))
        if encrypted:
            r["encrypted_content"] = encrypted
        self._reasoning, self._reasoning_text = None, []
        events.append(self.event("response.output_item.done", output_index=index, item=dict(r)))
        return events

    def _close_calls(self, status: str) -> list[Event]:
        events: list[Event] = []
        for key in sorted(self._calls):
            call = self._calls[key]
            index = call.pop("_index")
            call["arguments"] = "".join(self._call_args[key])
            kind = call["type"]
            if kind == "mcp_call":
                events.append(self.event("response.mcp_call_arguments.done", item_id=call["id"],
                                         output_index=index, arguments=call["arguments"]))
                if status == "completed":
                    self._server_calls.append((index, call))
                    continue
                call["status"] = "incomplete"
            elif kind == "function_call":
                call["status"] = status
                events.append(self.event("response.function_call_arguments.done", item_id=call["id"],
                                         output_index=index, arguments=call["arguments"], name=call["name"]))
            events.append(self.event("response.output_item.done", output_index=index, item=dict(call)))
        self._calls.clear()
        self._call_args.clear()
        return events

    def close_open(self, status: str = "completed") -> list[Event]:
        """Close whatever item is still open (end of a model step)."""
        self._step_calls = 0
        return self._close_reasoning(None) + self._close_message(status) + self._close_calls(status)
