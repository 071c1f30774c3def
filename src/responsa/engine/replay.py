"""Re-derive the event stream of a finished response from its stored
output, for ``GET /v1/responses/{id}?stream=true`` of a response whose
live events were not kept. Same taxonomy as the live stream; each text part
arrives as one delta."""

from __future__ import annotations

from typing import Any

from responsa.engine.events import Event


def replay(response: dict[str, Any]) -> list[Event]:
    events: list[Event] = []

    def emit(type: str, **fields: Any) -> None:
        events.append({"type": type, "sequence_number": len(events), **fields})

    start = {**response, "status": "in_progress", "output": [], "usage": None, "completed_at": None,
             "error": None, "incomplete_details": None}
    emit("response.created", response=start)
    emit("response.in_progress", response=start)
    for index, item in enumerate(response.get("output", [])):
        added = {**item, "status": "in_progress"} if "status" in item else dict(item)
        if item["type"] == "message":
            added["content"] = []
        if item["type"] in ("function_call", "mcp_call"):
            added["arguments"] = ""
        if item["type"] == "mcp_call":
            added.update(output=None, error=None)
        emit("response.output_item.added", output_index=index, item=added)
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "mcp_list_tools":
            emit("response.mcp_list_tools.in_progress", **at)
            emit(f"response.mcp_list_tools.{'failed' if item.get('error') else 'completed'}", **at)
        elif item["type"] == "mcp_call":
            emit("response.mcp_call.in_progress", **at)
            emit("response.mcp_call_arguments.delta", **at, delta=item["arguments"])
            emit("response.mcp_call_arguments.done", **at, arguments=item["arguments"])
            if item.get("status") in ("completed", "failed"):
                emit(f"response.mcp_call.{item['status']}", **at)
        if item["type"] == "message":
            for ci, part in enumerate(item.get("content", [])):
                if part["type"] == "refusal":
                    emit("response.content_part.added", **at, content_index=ci,
                         part={"type": "refusal", "refusal": ""})
                    emit("response.refusal.delta", **at, content_index=ci, delta=part["refusal"])
                    emit("response.refusal.done", **at, content_index=ci, refusal=part["refusal"])
                else:
                    emit("response.content_part.added", **at, content_index=ci,
                         part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
                    emit("response.output_text.delta", **at, content_index=ci, delta=part["text"],
                         logprobs=part.get("logprobs", []))
                    emit("response.output_text.done", **at, content_index=ci, text=part["text"],
                         logprobs=part.get("logprobs", []))
                emit("response.content_part.done", **at, content_index=ci, part=part)
        elif item["type"] == "function_call":
            emit("response.function_call_arguments.delta", **at, delta=item["arguments"])
            emit("response.function_call_arguments.done", **at, arguments=item["arguments"],
                 name=item["name"])
        elif item["type"] == "reasoning":
            for part in item.get("content") or []:
                emit("response.reasoning.delta", **at, content_index=0, delta=part["text"])
                emit("response.reasoning.done", **at, content_index=0, text=part["text"])
        emit("response.output_item.done", output_index=index, item=item)
    status = response["status"]
    if status == "failed":
        err = response.get("error") or {}
        emit("error", error={"type": "server_error", "code": err.get("code"), "message": err.get("message", ""),
                             "param": None})
    terminal = {"completed": "response.completed", "incomplete": "response.incomplete",
                "failed": "response.failed"}.get(status)
    if terminal:
        emit(terminal, response=response)
    return events
