"""A fake OpenAI Responses API server speaking the real SSE wire format.

Scripted by the last user message text of ``input`` and recording every
request body, like the Chat fake. Scripts: ``call:a,b``, ``call-with:NAME {json}`` (one call with exactly those
arguments), ``draw`` with an image_generation tool (an image_generation_call), ``think`` (summary
in two parts, encrypted content when included), ``length``, ``filtered``,
``failed`` (response.failed), ``error-event``, ``fail``, ``fail-once``,
``bad-request``, ``cut``, ``weather...`` with tools (one get_weather
call), ``json...`` with a json_schema ``text.format`` (a JSON instance of the
schema); an input that ends in function_call_output items answers
``Tool results: <outputs>``; anything else is echoed as ``You said: <text>``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from responsa.providers.test import example_of
from tests.fakes.base import FakeUpstream, Json, openai_error, text_of
from tests.fakes.embeddings import embeddings_route

MODELS = ["gpt-fake", "o-fake"]


class FakeResponses(FakeUpstream):
    MODELS = MODELS

    def __init__(self) -> None:
        super().__init__([Route("/v1/responses", self._responses, methods=["POST"]), embeddings_route(self)])

    async def _responses(self, request: Request) -> Response:
        body = await self.record(request)
        users = [i for i in body.get("input", []) if i.get("type") == "message" and i.get("role") == "user"]
        text = text_of(users[-1]["content"]) if users else ""
        self.seen[text] += 1
        if text == "fail" or (text == "fail-once" and self.seen[text] == 1):
            return openai_error(500, "fake upstream failure", "server_error")
        if text == "bad-request":
            return openai_error(400, "Invalid 'input[0]': fake bad request.", "invalid_request_error", "input")
        return StreamingResponse(_Stream(body).sse(text), media_type="text/event-stream")


class _Stream:
    def __init__(self, body: Json) -> None:
        self.body = body
        self.seq = 0
        self.output: list[Json] = []

    def event(self, etype: str, **fields: Any) -> bytes:
        payload = {"type": etype, "sequence_number": self.seq, **fields}
        self.seq += 1
        return f"event: {etype}\n".encode() + b"data: " + orjson.dumps(payload) + b"\n\n"

    def response(self, status: str, **fields: Any) -> Json:
        usage = {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 8}, "output_tokens": 6,
                 "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 26}
        return {"id": "resp_fake", "object": "response", "created_at": 0, "status": status,
                "model": self.body.get("model"), "output": self.output, "error": None,
                "incomplete_details": None, "usage": usage if status != "in_progress" else None, **fields}

    def message(self, *pieces: str) -> list[bytes]:
        index, item_id = len(self.output), f"msg_{len(self.output)}"
        top = self.body.get("top_logprobs")
        lps = [[{"token": p, "logprob": -0.1, "bytes": list(p.encode()),
                 "top_logprobs": [{"token": p, "logprob": -0.1, "bytes": list(p.encode())}][:top]}]
               if top is not None else [] for p in pieces]
        text = "".join(pieces)
        flat = [lp for piece in lps for lp in piece]
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": flat}
        item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant",
                "content": [part]}
        self.output.append(item)
        ids = {"item_id": item_id, "output_index": index, "content_index": 0}
        return [
            self.event("response.output_item.added", output_index=index,
                       item={**item, "status": "in_progress", "content": []}),
            self.event("response.content_part.added", **ids, part={**part, "text": "", "logprobs": []}),
            *[self.event("response.output_text.delta", **ids, delta=p, logprobs=lp)
              for p, lp in zip(pieces, lps, strict=True)],
            self.event("response.output_text.done", **ids, text=text, logprobs=part["logprobs"]),
            self.event("response.content_part.done", **ids, part=part),
            self.event("response.output_item.done", output_index=index, item=item),
        ]

    def call(self, name: str, n: int, args: str | None = None) -> list[bytes]:
        index, item_id = len(self.output), f"fc_{len(self.output)}"
        args = args or orjson.dumps({"city": "Paris", "n": n}).decode()
        item = {"id": item_id, "type": "function_call", "status": "completed", "call_id": f"call_{n}",
                "name": name, "arguments": args}
        self.output.append(item)
        return [
            self.event("response.output_item.added", output_index=index,
                       item={**item, "status": "in_progress", "arguments": ""}),
            *[self.event("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                         delta=d) for d in (args[:6], args[6:])],
            self.event("response.function_call_arguments.done", item_id=item_id, output_index=index,
                       arguments=args),
            self.event("response.output_item.done", output_index=index, item=item),
        ]

    def hosted(self, item: Json) -> list[bytes]:
        """An item of a tool upstream runs itself (image generation...)."""
        index = len(self.output)
        self.output.append(item)
        return [self.event("response.output_item.added", output_index=index, item={**item, "status": "in_progress"}),
                self.event("response.output_item.done", output_index=index, item=item)]

    def reasoning(self) -> list[bytes]:
        index, item_id = len(self.output), f"rs_{len(self.output)}"
        parts = [["Plan ", "first."], ["Then ", "answer."]]
        item: Json = {"id": item_id, "type": "reasoning",
                      "summary": [{"type": "summary_text", "text": "".join(p)} for p in parts]}
        if "reasoning.encrypted_content" in self.body.get("include", []):
            item["encrypted_content"] = "enc-opaque-state"
        self.output.append(item)
        out = [self.event("response.output_item.added", output_index=index, item={**item, "summary": []})]
        for si, pieces in enumerate(parts):
            ids = {"item_id": item_id, "output_index": index, "summary_index": si}
            out.append(self.event("response.reasoning_summary_part.added", **ids,
                                  part={"type": "summary_text", "text": ""}))
            out += [self.event("response.reasoning_summary_text.delta", **ids, delta=p) for p in pieces]
            out.append(self.event("response.reasoning_summary_part.done", **ids,
                                  part={"type": "summary_text", "text": "".join(pieces)}))
        out.append(self.event("response.output_item.done", output_index=index, item=item))
        return out

    def tool_outputs(self) -> list[str]:
        """Outputs of the function_call_output items that end the input."""
        outputs: list[str] = []
        for item in reversed(self.body.get("input", [])):
            if item.get("type") != "function_call_output":
                break
            output = item.get("output")
            outputs.insert(0, output if isinstance(output, str) else text_of(output))
        return outputs

    async def sse(self, text: str) -> AsyncIterator[bytes]:
        yield self.event("response.created", response=self.response("in_progress"))
        yield self.event("response.in_progress", response=self.response("in_progress"))
        if text == "cut":
            for chunk in self.message("You ", "said ")[:3]:
                yield chunk
            raise ConnectionResetError("fake upstream dropped the connection")
        if text == "error-event":
            yield self.event("error", code="server_error", message="The model exploded.", param=None)
            return
        if text == "failed":
            error = {"code": "server_error", "message": "The model crashed."}
            yield self.event("response.failed", response=self.response("failed", error=error))
            return
        schema = ((self.body.get("text") or {}).get("format") or {}).get("schema")
        if outputs := self.tool_outputs():
            chunks = self.message("Tool results: ", " | ".join(outputs))
        elif text.startswith("json") and schema is not None:
            answer = orjson.dumps(example_of(schema)).decode()
            chunks = self.message(answer[:4], answer[4:])
        elif text.startswith("weather") and self.body.get("tools"):
            chunks = self.call("get_weather", 0, '{"city": "Paris"}')  # fits a strict get_weather schema
        elif text.startswith("call-with:"):
            name, _, args = text.partition(":")[2].strip().partition(" ")
            chunks = self.call(name, 0, args)
        elif text.startswith("call:"):
            chunks = [c for n, name in enumerate(text[5:].split(",")) for c in self.call(name, n)]
        elif text == "think":
            chunks = self.reasoning() + self.message("Thought ", "done.")
        elif text == "draw" and any(t.get("type") == "image_generation" for t in self.body.get("tools", [])):
            chunks = self.hosted({"id": "ig_fake", "type": "image_generation_call", "status": "completed",
                                  "result": "aW1hZ2U="}) + self.message("Here ", "it is.")
        else:
            chunks = self.message(*[w + " " for w in f"You said: {text}".split(" ")])
        for chunk in chunks:
            yield chunk
        if text in ("length", "filtered"):
            reason = "max_output_tokens" if text == "length" else "content_filter"
            yield self.event("response.incomplete",
                             response=self.response("incomplete", incomplete_details={"reason": reason}))
        else:
            yield self.event("response.completed", response=self.response("completed"))
