"""A deterministic model for tests and offline demos (``test/<anything>``).

By default it echoes the last user message. Directives in that message
script every path the engine must handle, so tests drive the real server
end to end without a network:

- ``[[history]]``: answer with what the model saw: every context item's
  text joined by `` | `` (tests assert context assembly with it);
- ``[[instructions]]``: answer with the instructions it received;
- ``[[call:NAME {json}]]``: call tool NAME with those arguments (repeat the
  directive for parallel calls);
- ``[[reasoning:TEXT]]``: think TEXT first (a reasoning item whose opaque
  ``encrypted_content`` is ``test:TEXT``); ``[[summary:TEXT]]``: the same as
  a reasoning summary (as OpenAI's reasoning models stream it);
- ``[[long:N]]``: answer with N words; ``[[delay:MS]]`` between deltas;
- ``[[error]]`` / ``[[error:STATUS]]``: fail before the first byte;
  ``[[error-model:NAME]]``: fail that way only when called as model NAME
  (exercises fallback lists);
  ``[[fail-after:N]]``: fail mid-stream after N deltas;
- ``[[refuse]]``: a refusal instead of text;
- ``[[no-call]]``: answer in text even when tools are offered (agents such
  as Codex always offer tools);
- ``[[disobey]]``: ignore ``tool_choice`` and ``parallel_tool_calls`` (a
  provider that does not comply, to test the engine's own checks).

Provider option ``tool_choice_required = false`` makes it claim it cannot
be forced to call a tool.

With tools and a ``tool_choice`` other than ``none`` it calls a tool (the
forced one, or the first whose name appears in the text, or the first), its
arguments built from the tool's JSON schema; after a tool's output it
reports that output. With ``text.format`` json_schema it answers with a
minimal JSON instance of the schema.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from responsa.config import ProviderConfig
from responsa.protocol.ids import new_id
from responsa.protocol.items import text_of
from responsa.providers import base as m
from responsa.providers.registry import register

_DIRECTIVE = re.compile(r"\[\[([a-z-]+)(?::(.*?))?\]\](?!\])", re.DOTALL)
_CHUNK = re.compile(r"\S+\s*|\s+")
_REPLY_EXACTLY = re.compile(r"reply with exactly:\s*(.+?)\s*$", re.IGNORECASE | re.DOTALL)


def example_of(schema: Any) -> Any:
    """A minimal value that validates against ``schema`` (the subset of JSON
    schema that tool and structured-output schemas use)."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_of(schema[key][0])
    stype = schema.get("type")
    if isinstance(stype, list):
        stype = next((t for t in stype if t != "null"), "null")
    if stype == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {k: example_of(props.get(k, {})) for k in required}
    if stype == "array":
        n = schema.get("minItems", 0)
        return [example_of(schema.get("items", {})) for _ in range(n)]
    if stype == "string":
        return "x" * max(schema.get("minLength", 0), 1) if schema.get("minLength") else "test"
    if stype in ("integer", "number"):
        return schema.get("minimum", 1)
    if stype == "boolean":
        return True
    return None


def _chunks(text: str) -> list[str]:
    return _CHUNK.findall(text) or [text]


class TestProvider:
    name = "test"

    def __init__(self, cfg: ProviderConfig) -> None:
        self.cfg = cfg

    def capabilities(self, model: str) -> m.Capabilities:
        return m.Capabilities(tools=True, vision=True, json_schema=True, reasoning=True, logprobs=True,
                              tool_choice_required=bool(self.cfg.options.get("tool_choice_required", True)),
                              context_window=int(self.cfg.options.get("context_window", 128_000)))

    async def list_models(self) -> list[str]:
        return self.cfg.models or ["echo"]

    async def aclose(self) -> None:
        return None

    def _tool_to_call(self, req: m.ModelRequest, text: str) -> dict[str, Any] | None:
        choice = req.tool_choice
        if not req.tools or choice == "none":
            return None
        tools = {t["name"]: t for t in req.tools if t.get("type") == "function"}
        if isinstance(choice, dict) and choice.get("type") == "function":
            return tools.get(choice["name"])
        allowed = list(tools)
        if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            allowed = [t["name"] for t in choice["tools"] if t["name"] in tools]
        if not allowed:
            return None
        return tools[next((n for n in allowed if n in text), allowed[0])]

    async def stream(self, req: m.ModelRequest) -> AsyncIterator[m.ModelEvent]:
        items = req.items
        last = items[-1] if items else {}
        user_text = next((text_of(it) for it in reversed(items)
                          if it.get("type") == "message" and it.get("role") == "user"), "")
        directives: dict[str, list[str]] = {}
        for name, arg in _DIRECTIVE.findall(user_text if last.get("type") == "message" else ""):
            directives.setdefault(name, []).append(arg)
        plain = _DIRECTIVE.sub("", user_text).strip()
        delay = float(directives["delay"][0]) / 1000 if "delay" in directives else 0.0

        if req.model in directives.get("error-model", []):
            raise m.ProviderError(f"Scripted failure of model {req.model!r}.", status=503, code="upstream_error")
        if "error" in directives:
            status = int(directives["error"][0] or 502)
            raise m.ProviderError(f"Scripted upstream failure ({status}).", status=status,
                                  code="upstream_error", retryable=status >= 500 or status == 429)
        n_in = sum(len(_chunks(text_of(it))) for it in items if it.get("type") == "message")
        n_in += len(_chunks(req.instructions)) if req.instructions else 0

        for thought in directives.get("reasoning", []):
            for piece in _chunks(thought):
                yield m.ReasoningDelta(piece)
            yield m.ReasoningDone(encrypted_content=f"test:{thought}")  # opaque state, as upstreams send
        for thought in directives.get("summary", []):
            for piece in _chunks(thought):
                yield m.ReasoningDelta(piece, summary=True)
            yield m.ReasoningDone(encrypted_content=f"test:{thought}")

        calls = [self._scripted_call(arg) for arg in directives.get("call", [])]
        if not calls and last.get("type") == "message" and last.get("role") == "user" \
                and "disobey" not in directives and "no-call" not in directives:
            tool = self._tool_to_call(req, plain)
            if tool is not None:
                schema = tool.get("parameters") or {"type": "object"}  # the engine's default for a tool without one
                calls = [(tool["name"], orjson.dumps(example_of(schema)).decode())]
        if calls and req.tools:
            if not req.parallel_tool_calls and "disobey" not in directives:
                calls = calls[:1]
            for i, (name, args) in enumerate(calls):
                yield m.ToolCallStart(index=i, call_id=new_id("call")[:29], name=name)
                for j in range(0, len(args), 8):
                    yield m.ToolCallDelta(index=i, arguments=args[j:j + 8])
            yield m.Usage(n_in, len(calls) * 8)
            yield m.Finish("tool_calls")
            return

        text = self._answer(req, items, last, plain, directives)
        chunks = _chunks(text)
        fail_after = int(directives["fail-after"][0]) if "fail-after" in directives else None
        limit = req.max_output_tokens
        emitted = 0
        for chunk in chunks:
            if limit is not None and emitted >= limit:
                break
            if fail_after is not None and emitted >= fail_after:
                raise m.ProviderError("Scripted upstream failure mid-stream.", code="upstream_error")
            if delay:
                await asyncio.sleep(delay)
            if "refuse" in directives:
                yield m.RefusalDelta(chunk)
            else:
                logprobs = None
                if req.top_logprobs is not None:
                    logprobs = [{"token": chunk, "logprob": -0.01, "bytes": list(chunk.encode()),
                                 "top_logprobs": [{"token": chunk, "logprob": -0.01,
                                                   "bytes": list(chunk.encode())}][: req.top_logprobs]}]
                yield m.TextDelta(chunk, logprobs)
            emitted += 1
        yield m.Usage(n_in, emitted)
        yield m.Finish("length" if limit is not None and emitted < len(chunks) else "stop")

    @staticmethod
    def _scripted_call(arg: str) -> tuple[str, str]:
        name, _, args = arg.strip().partition(" ")
        return name, args.strip() or "{}"

    def _answer(self, req: m.ModelRequest, items: list[dict[str, Any]], last: dict[str, Any], plain: str,
                directives: dict[str, list[str]]) -> str:
        fmt = req.text_format.get("type")
        if fmt == "json_schema":
            return orjson.dumps(example_of(req.text_format.get("schema") or {})).decode()
        if fmt == "json_object":
            return orjson.dumps({"answer": plain}).decode()
        if last.get("type") == "function_call_output":
            name = next((it["name"] for it in items if it.get("type") == "function_call"
                         and it.get("call_id") == last.get("call_id")), "tool")
            output = last.get("output")
            shown = output if isinstance(output, str) else orjson.dumps(output).decode()
            return f"The {name} tool returned: {shown}"
        if "history" in directives:
            return " | ".join(f"{it.get('role', it.get('type'))}: {_DIRECTIVE.sub('', text_of(it)).strip()}"
                              for it in items if it.get("type") == "message").rstrip()
        if "instructions" in directives:
            return req.instructions or "(no instructions)"
        if "long" in directives:
            return " ".join(f"word{i}" for i in range(int(directives["long"][0])))
        exact = _REPLY_EXACTLY.search(plain)
        if exact:
            return exact.group(1)
        return plain or "Hello! I am the Responsa test model."


@register("test", options={"tool_choice_required", "context_window"})
def make(cfg: ProviderConfig) -> m.Provider:
    return TestProvider(cfg)
