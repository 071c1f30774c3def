"""Shared test plumbing: run an ASGI app on a real port, and validate
everything the server emits against the Open Responses spec."""

from __future__ import annotations

import copy
import functools
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from jsonschema import Draft202012Validator

SPEC = Path(__file__).parent / "spec" / "openapi.json"


@contextmanager
def serve_in_thread(app: Any, *, lifespan: str = "off") -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of ``app`` served by uvicorn on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@functools.cache
def _spec() -> dict[str, Any]:
    spec = json.loads(SPEC.read_text())
    schemas = spec["components"]["schemas"]
    # Generator artefact in the spec: it types a json_schema format's
    # "schema" as null-only, but the Response echoes the real schema object.
    fmt = copy.deepcopy(schemas["JsonSchemaResponseFormat"])
    fmt["properties"]["schema"] = {"anyOf": [{"type": "object"}, {"type": "null"}]}
    schemas["JsonSchemaResponseFormat"] = fmt
    return spec


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    spec = _spec()
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})


_EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedStreamingEvent",
    "response.queued": "ResponseQueuedStreamingEvent",
    "response.in_progress": "ResponseInProgressStreamingEvent",
    "response.completed": "ResponseCompletedStreamingEvent",
    "response.failed": "ResponseFailedStreamingEvent",
    "response.incomplete": "ResponseIncompleteStreamingEvent",
    "response.output_item.added": "ResponseOutputItemAddedStreamingEvent",
    "response.output_item.done": "ResponseOutputItemDoneStreamingEvent",
    "response.reasoning_summary_part.added": "ResponseReasoningSummaryPartAddedStreamingEvent",
    "response.reasoning_summary_part.done": "ResponseReasoningSummaryPartDoneStreamingEvent",
    "response.content_part.added": "ResponseContentPartAddedStreamingEvent",
    "response.content_part.done": "ResponseContentPartDoneStreamingEvent",
    "response.output_text.delta": "ResponseOutputTextDeltaStreamingEvent",
    "response.output_text.done": "ResponseOutputTextDoneStreamingEvent",
    "response.refusal.delta": "ResponseRefusalDeltaStreamingEvent",
    "response.refusal.done": "ResponseRefusalDoneStreamingEvent",
    "response.reasoning.delta": "ResponseReasoningDeltaStreamingEvent",
    "response.reasoning.done": "ResponseReasoningDoneStreamingEvent",
    "response.reasoning_summary_text.delta": "ResponseReasoningSummaryDeltaStreamingEvent",
    "response.reasoning_summary_text.done": "ResponseReasoningSummaryDoneStreamingEvent",
    "response.output_text.annotation.added": "ResponseOutputTextAnnotationAddedStreamingEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaStreamingEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneStreamingEvent",
    "error": "ErrorStreamingEvent",
}

# Item types outside the Open Responses spec (OpenAI's MCP items). They are
# checked for the keys OpenAI's own SDK requires instead.
_EXTENSION_ITEMS = {
    "mcp_list_tools": {"id", "server_label", "tools"},
    "mcp_call": {"id", "server_label", "name", "arguments"},
    "mcp_approval_request": {"id", "server_label", "name", "arguments"},
    "mcp_approval_response": {"approval_request_id", "approve"},
}


def _strip_extensions(obj: dict[str, Any]) -> dict[str, Any]:
    """Check extension items by hand and hide them (and extension tools) from
    the spec validator, which only knows the spec's own types."""
    out = dict(obj)
    if isinstance(out.get("output"), list):
        kept = []
        for item in out["output"]:
            required = _EXTENSION_ITEMS.get(item.get("type"))
            if required is None:
                kept.append(item)
            else:
                missing = required - set(item)
                assert not missing, f"{item['type']} item lacks {missing}: {item}"
        out["output"] = kept
    if isinstance(out.get("tools"), list):
        out["tools"] = [t for t in out["tools"] if t.get("type") == "function"]
    return out


def validate_response(obj: dict[str, Any]) -> None:
    """Raise if ``obj`` is not a valid Open Responses ``ResponseResource``."""
    errors = sorted(_validator("ResponseResource").iter_errors(_strip_extensions(obj)), key=str)
    assert not errors, f"invalid Response object: {errors[0].message} at {list(errors[0].absolute_path)}"


def validate_event(ev: dict[str, Any]) -> None:
    """Raise if ``ev`` is not a valid Open Responses streaming event."""
    etype = ev.get("type")
    if isinstance(ev.get("item"), dict) and ev["item"].get("type") in _EXTENSION_ITEMS:
        _strip_extensions({"output": [ev["item"]]})
        return
    if isinstance(etype, str) and etype.startswith(("response.mcp_", "response.mcp")):
        assert isinstance(ev.get("sequence_number"), int)
        return
    schema = _EVENT_SCHEMAS.get(etype or "")
    assert schema is not None, f"unknown event type {etype!r}"
    if isinstance(ev.get("response"), dict):
        validate_response(ev["response"])
        ev = {**ev, "response": _strip_extensions(ev["response"])}
    errors = sorted(_validator(schema).iter_errors(ev), key=str)
    assert not errors, f"invalid {etype} event: {errors[0].message} at {list(errors[0].absolute_path)}"


def validate_stream(events: list[dict[str, Any]]) -> None:
    """Every event valid, sequence numbers 0..n-1, exactly one terminal event, last."""
    assert events, "no events"
    for i, ev in enumerate(events):
        validate_event(ev)
        assert ev["sequence_number"] == i, f"event {i} has sequence_number {ev['sequence_number']}"
    terminal = [e for e in events if e["type"] in ("response.completed", "response.incomplete", "response.failed")]
    assert len(terminal) == 1 and terminal[0] is events[-1], "exactly one terminal event, at the end"


def parse_sse(raw: bytes) -> tuple[list[dict[str, Any]], bool]:
    """Events of an SSE body, checking the framing rules (LF only, one
    ``data:`` line per event, ``event:`` equal to the type) and whether it
    ended with ``[DONE]``."""
    assert b"\r" not in raw, "SSE must use LF line endings"
    events, done = [], False
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        data = [ln[6:] for ln in lines if ln.startswith("data: ")]
        assert len(data) == 1, f"one data line per event: {block[:200]}"
        if data[0] == "[DONE]":
            done = True
            continue
        assert not done, "event after [DONE]"
        ev = json.loads(data[0])
        names = [ln[7:] for ln in lines if ln.startswith("event: ")]
        assert names == [ev["type"]], f"event: line {names} does not match type {ev['type']}"
        events.append(ev)
    return events, done
