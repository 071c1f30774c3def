"""Validation of everything the server emits against the ``openai`` SDK's
own types (``Response``, ``ResponseOutputItem``, ``ResponseStreamEvent``),
for the item and event types the Open Responses spec (``tests/helpers``)
does not describe: shell, apply_patch, custom, computer, web search calls.

Spec-described parts are still checked against the spec: extension items
and events are checked here and then hidden from the spec validator.
"""

from __future__ import annotations

import typing
from typing import Any

from openai.types.responses import Response, ResponseOutputItem, ResponseStreamEvent
from pydantic import BaseModel

from tests.helpers import validate_response, validate_stream

Json = dict[str, Any]
EXTENSION_ITEMS = frozenset({"shell_call", "local_shell_call", "apply_patch_call", "custom_tool_call", "computer_call",
                             "tool_search_call", "web_search_call", "shell_call_output", "apply_patch_call_output",
                             "image_generation_call", "code_interpreter_call", "file_search_call"})


def _by_type(union: Any) -> dict[str, type[BaseModel]]:
    """``type`` literal -> model class of a (possibly ``Annotated``) SDK union."""
    while typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    out = {}
    for cls in typing.get_args(union):
        for literal in typing.get_args(cls.model_fields["type"].annotation):
            out[literal] = cls
    return out


_SPEC_ONLY = frozenset({"response.reasoning.delta", "response.reasoning.done"})
_ITEMS = _by_type(ResponseOutputItem)
_EVENTS = _by_type(ResponseStreamEvent)


def check_item(item: Json) -> None:
    cls = _ITEMS.get(item.get("type", ""))
    assert cls is not None, f"the SDK knows no output item of type {item.get('type')!r}"
    cls.model_validate(item)


def _extension(item: Any) -> bool:
    return isinstance(item, dict) and (item.get("type") in EXTENSION_ITEMS or "namespace" in item)


def _spec_annotations(value: Any) -> Any:
    """``value`` without ``file_citation`` annotations (the spec knows only
    ``url_citation``; the SDK checks file citations)."""
    if isinstance(value, list):
        return [_spec_annotations(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: [a for a in v if not (isinstance(a, dict) and a.get("type") == "file_citation")]
            if k == "annotations" and isinstance(v, list) else _spec_annotations(v) for k, v in value.items()}


def _spec_view(obj: Json) -> Json:
    out = _spec_annotations(obj)
    if isinstance(out.get("output"), list):
        out["output"] = [it for it in out["output"] if not _extension(it)]
    if isinstance(out.get("tools"), list):
        out["tools"] = [t for t in out["tools"] if t.get("type") == "function"]
    choice = out.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") not in ("function", "allowed_tools"):
        out["tool_choice"] = "required"  # a native tool type's choice ({"type": "shell"}): the SDK checks it
    return out


def check_response(resp: Json) -> None:
    Response.model_validate(resp)
    for item in resp["output"]:
        check_item(item)
    validate_response(_spec_view(resp))


def check_stream(events: list[Json]) -> None:
    """Every event valid for the SDK; the spec-described ones for the spec too
    (sequence numbers and the single terminal event over the whole stream)."""
    spec_events = []
    for ev in events:
        cls = _EVENTS.get(ev["type"])
        # Open Responses names raw reasoning events response.reasoning.*, the
        # SDK response.reasoning_text.*: those are checked against the spec only.
        assert cls is not None or ev["type"] in _SPEC_ONLY, f"the SDK knows no event of type {ev['type']!r}"
        if cls is not None:
            cls.model_validate(ev)
        if isinstance(ev.get("item"), dict):
            check_item(ev["item"])
        if isinstance(ev.get("response"), dict):
            check_response(ev["response"])
        if _extension(ev.get("item")) or ev["type"].startswith(("response.custom_tool_call", "response.web_search",
                                                                "response.file_search")):
            continue
        if (ev.get("annotation") or {}).get("type") == "file_citation":
            continue
        shown = {**ev, "response": _spec_view(ev["response"])} if isinstance(ev.get("response"), dict) \
            else _spec_annotations(ev)
        spec_events.append(shown)
    renumbered = [{**ev, "sequence_number": i} for i, ev in enumerate(spec_events)]
    assert [ev["sequence_number"] for ev in events] == list(range(len(events)))
    validate_stream(renumbered)
