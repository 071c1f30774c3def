"""Shared test plumbing: run an ASGI app on a real port or a server as a
real process, wait on conditions instead of sleeping, and validate
everything the server emits against the Open Responses spec."""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from jsonschema import Draft202012Validator

from responsa.api.app import create_app
from responsa.config import Settings, load_settings

SPEC = Path(__file__).parent / "spec" / "openapi.json"
T = TypeVar("T")

POLL_S = 0.02
"""How often the waits below look again: short, so a test waits about as
long as the condition takes and no more."""


def wait_until(predicate: Callable[[], T], timeout: float = 10, what: str | Callable[[], str] = "") -> T:
    """The first truthy value of ``predicate()``, polled until ``timeout``
    seconds have passed; then an ``AssertionError`` saying ``what`` was
    awaited. Use it instead of ``sleep(n)`` followed by an assertion: it
    is as fast as the system under test and does not flake when the machine
    is slow."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {_what(what, predicate)}")
        time.sleep(POLL_S)


async def async_wait_until(predicate: Callable[[], T | Awaitable[T]], timeout: float = 10,
                           what: str | Callable[[], str] = "") -> T:
    """:func:`wait_until` for async tests: the predicate may be a coroutine
    function, and the event loop keeps running while we wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {_what(what, predicate)}")
        await asyncio.sleep(POLL_S)


def holds_for(predicate: Callable[[], object], seconds: float, what: str = "") -> None:
    """Assert that something does NOT happen: ``predicate()`` stays truthy
    for ``seconds``. The one honest use of elapsed time in a test (absence
    has no event to wait on); it fails as soon as the predicate breaks."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"no longer true: {_what(what, predicate)}"
        time.sleep(POLL_S)
    assert predicate(), f"no longer true: {_what(what, predicate)}"


async def async_holds_for(predicate: Callable[[], object], seconds: float, what: str = "") -> None:
    """:func:`holds_for` for async tests."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"no longer true: {_what(what, predicate)}"
        await asyncio.sleep(POLL_S)
    assert predicate(), f"no longer true: {_what(what, predicate)}"


def _what(what: str | Callable[[], str], predicate: Callable[..., object]) -> str:
    if callable(what):
        return what()
    return what or getattr(predicate, "__qualname__", repr(predicate))


def free_port() -> int:
    """A TCP port nothing listens on right now (for servers started as processes)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    """A redis-server of the test's own on a private port, for outage tests
    that stop and start it (the machine's shared Redis is never touched)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _pong(self) -> bool:
        return subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._pong, 10, "own redis did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def wait_healthy(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60,
                 log: Path | None = None) -> None:
    """Wait until ``url`` answers 200, failing early (with its log) if ``proc`` exits."""
    def up() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}" + _log(log))
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout, what=lambda: f"{url} to answer 200" + _log(log))


def _log(log: Path | None) -> str:
    return f"\n{log.read_text()}" if log is not None and log.exists() else ""


@contextmanager
def server_process(database_url: str, *, env: Mapping[str, str] | None = None, clean_env: bool = False,
                   log: Path | None = None, wait: bool = True) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``(process, base URL)`` of ``responsa serve`` run as a real process on a
    free port with the test model; stopped (SIGTERM, then SIGKILL) on exit.
    ``clean_env`` drops the caller's ``RESPONSA_*`` variables; ``log``
    collects its output; ``wait=False`` returns before it is healthy (to
    start several at once, then :func:`wait_healthy` each)."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not (clean_env and k.startswith("RESPONSA_"))}
    cmd = [sys.executable, "-m", "responsa.cli", "serve", "--port", str(port), "--database-url", database_url,
           "--model", "test/echo", "--log-level", "warning"]
    out = log.open("wb") if log is not None else None
    try:
        proc = subprocess.Popen(cmd, env={**base, **(env or {})}, stdout=out,
                                stderr=subprocess.STDOUT if out else None)
    finally:
        if out is not None:
            out.close()
    url = f"http://127.0.0.1:{port}"
    try:
        if wait:
            wait_healthy(f"{url}/health", proc, log=log)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def serve_in_thread(app: Any, *, lifespan: str = "off") -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of ``app`` served by uvicorn on a free port."""
    # IPPROTO_TCP named: asyncio turns Nagle off only on sockets whose
    # ``proto`` says TCP, and without it every request waited ~40 ms for a
    # delayed ACK (uvloop sets TCP_NODELAY regardless).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    # The stdlib loop, not uvloop: hundreds of servers start and stop in one
    # test process, and uvloop 0.23 can segfault while closing handles at a
    # loop's end (MagicStack/uvloop#706; it killed a full run here). Servers
    # started as processes (`responsa serve`) still run on uvloop.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan, loop="asyncio"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("test server did not start")
        return server.started

    wait_until(started, 30, what="the test server to start")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def server_settings(db_dir: Path, **overrides: Any) -> Settings:
    """Settings of a test server: a SQLite file in ``db_dir``, the test model
    as default; ``overrides`` as for :func:`responsa.config.load_settings`."""
    return load_settings(None, **{"database_url": f"sqlite:///{db_dir / 'responsa.db'}",
                                  "default_model": "test/echo", **overrides})


Serve = Callable[[Settings], AbstractContextManager[str]]
"""The type of the ``serve_responsa`` fixture."""


@contextmanager
def serve_responsa(settings: Settings) -> Iterator[str]:
    """Base URL (no ``/v1``) of a Responsa server with ``settings``, in this
    process. Tests reach it through the ``serve_responsa`` fixture, which is
    what marks them end to end (``slow``, see tests/conftest.py)."""
    with serve_in_thread(create_app(settings), lifespan="on") as url:
        yield url


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
