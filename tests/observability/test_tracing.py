"""OpenTelemetry traces with the GenAI semantic conventions, captured by
the SDK's in-memory exporter from a real server running real MCP calls;
and the standard ``OTEL_*`` variables on a ``responsa serve`` process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from responsa.api.app import create_app
from responsa.config import load_settings
from responsa.observability import tracing
from tests.helpers import serve_in_thread, validate_response
from tests.observability.conftest import start_serve, stop, wait_until
from tests.tools.support import make_server

CALLS = '[[call:add {"a": 2, "b": 3}]] [[call:explode {}]]'


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with serve_in_thread(make_server("calc").streamable_http_app(), lifespan="on") as url:
        yield f"{url}/mcp"


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    db = tmp_path_factory.mktemp("traced") / "db.sqlite"
    settings = load_settings(None, database_url=f"sqlite:///{db}", default_model="test/echo",
                             mcp_allow_private=["127.0.0.1", "localhost"])
    tracing.enable(provider, capture=False)
    try:
        with serve_in_thread(create_app(settings), lifespan="on") as url:
            yield url, exporter
    finally:
        tracing.disable()


def _create(url: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/responses", json=body, headers={"authorization": "Bearer k", **headers}, timeout=30)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    validate_response(data)
    return data


def _spans(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context is not None and s.context.trace_id == trace_id]


def test_response_model_and_tool_spans(traced: tuple[str, InMemorySpanExporter], mcp_url: str) -> None:
    url, exporter = traced
    exporter.clear()
    tool = {"type": "mcp", "server_label": "calc", "server_url": mcp_url, "require_approval": "never"}
    resp = _create(url, {"model": "test/echo", "input": CALLS, "tools": [tool], "temperature": 0.5})
    wait_until(lambda: any(s.name == "invoke_agent responsa" for s in exporter.get_finished_spans()))
    agent = next(s for s in exporter.get_finished_spans() if s.name == "invoke_agent responsa")
    assert agent.context is not None
    spans = _spans(exporter, agent.context.trace_id)
    attrs = dict(agent.attributes or {})
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.response.id"] == resp["id"] and attrs["gen_ai.request.model"] == "test/echo"
    assert attrs["gen_ai.usage.input_tokens"] == resp["usage"]["input_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == resp["usage"]["output_tokens"]

    chats = [s for s in spans if s.name == "chat echo"]
    assert len(chats) == 2  # the tool loop: call the model, run the tools, call it again
    for chat in chats:
        a = dict(chat.attributes or {})
        assert chat.parent is not None and chat.parent.span_id == agent.context.span_id
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "test"
        assert a["gen_ai.request.model"] == "echo" and a["gen_ai.request.temperature"] == 0.5
        assert a["gen_ai.usage.input_tokens"] >= 0 and "gen_ai.response.finish_reasons" in a
        assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a  # content is off
    assert sum(dict(c.attributes or {})["gen_ai.usage.output_tokens"] for c in chats) == resp["usage"]["output_tokens"]

    tools = {s.name: s for s in spans if s.name.startswith("execute_tool")}
    assert set(tools) == {"execute_tool add", "execute_tool explode"}
    calls = {it["name"]: it for it in resp["output"] if it["type"] == "mcp_call"}
    for name, span in tools.items():
        a = dict(span.attributes or {})
        assert span.parent is not None and span.parent.span_id == agent.context.span_id
        assert a["gen_ai.operation.name"] == "execute_tool" and a["gen_ai.tool.name"] == name.split()[1]
        assert a["gen_ai.tool.call.id"] == calls[name.split()[1]]["id"]
        assert "gen_ai.tool.call.arguments" not in a
    assert tools["execute_tool add"].status.is_ok
    assert not tools["execute_tool explode"].status.is_ok
    assert dict(tools["execute_tool explode"].attributes or {})["error.type"] == "tool_error"


def test_content_capture_and_parent_trace(traced: tuple[str, InMemorySpanExporter]) -> None:
    url, exporter = traced
    exporter.clear()
    tracing.capture_content = True
    try:
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        _create(url, {"model": "test/echo", "input": "capture this text"},
                traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")
    finally:
        tracing.capture_content = False
    wait_until(lambda: bool(_spans(exporter, int(trace_id, 16))))
    wait_until(lambda: len(_spans(exporter, int(trace_id, 16))) >= 2)
    spans = _spans(exporter, int(trace_id, 16))  # joined the caller's trace
    chat = next(s for s in spans if s.name.startswith("chat"))
    a = dict(chat.attributes or {})
    assert "capture this text" in str(a["gen_ai.input.messages"])
    assert json.loads(str(a["gen_ai.output.messages"]))[0]["parts"][0]["content"] == "capture this text"


def test_failed_response_marks_spans(traced: tuple[str, InMemorySpanExporter]) -> None:
    url, exporter = traced
    exporter.clear()
    r = httpx.post(f"{url}/v1/responses", json={"model": "test/echo", "input": "[[error]]"}, timeout=30)
    assert r.status_code >= 400
    wait_until(lambda: any(s.name == "invoke_agent responsa" for s in exporter.get_finished_spans()))
    agent = next(s for s in exporter.get_finished_spans() if s.name == "invoke_agent responsa")
    chat = next(s for s in exporter.get_finished_spans() if s.name.startswith("chat"))
    assert not agent.status.is_ok and not chat.status.is_ok
    assert "error.type" in dict(chat.attributes or {})


def test_off_by_default_without_importing_the_sdk() -> None:
    code = ("import sys; from responsa.api.app import create_app; from responsa.config import load_settings; "
            "from responsa.observability import tracing; create_app(load_settings(None)); "
            "assert tracing.configure_from_env() is False; assert not tracing.enabled(); "
            "assert 'opentelemetry.sdk.trace' not in sys.modules, 'the SDK was imported'")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_standard_env_vars_configure_an_exporter(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    proc, url = start_serve(["--database-url", f"sqlite:///{tmp_path}/db.sqlite", "--model", "test/echo"], log,
                            env={"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "responsa-test",
                                 "OTEL_BSP_SCHEDULE_DELAY": "50"})
    try:
        _create(url, {"model": "test/echo", "input": "hello"})
        wait_until(lambda: '"invoke_agent responsa"' in log.read_text())
    finally:
        stop(proc)
    text = log.read_text()
    assert '"service.name": "responsa-test"' in text and '"gen_ai.operation.name": "chat"' in text
