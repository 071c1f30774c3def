"""OpenTelemetry traces following the GenAI semantic conventions.

Spans: ``invoke_agent responsa`` per response (the turn loop), ``chat
{model}`` per model call (a child; one per step of a tool loop), and
``execute_tool {name}`` per server-side tool (MCP) call, carrying the
standard ``gen_ai.*`` attributes (operation, provider, request/response
model, response id, finish reasons, token usage, tool name/call id).
Prompts, outputs and tool arguments/results are only recorded when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.

Off unless configured with the standard variables: ``OTEL_TRACES_EXPORTER``
(``otlp``, ``console``, ``none``) or an ``OTEL_EXPORTER_OTLP_[TRACES_]
ENDPOINT``; ``OTEL_SDK_DISABLED=true`` wins. The SDK reads the rest itself
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_HEADERS``...). When off, every hook
is one test of a module global: the SDK is not even imported.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from responsa import __version__

log = logging.getLogger("responsa.tracing")

_tracer: Any = None
_provider: Any = None
capture_content = False


def enabled() -> bool:
    return _tracer is not None


def tracer() -> Any:
    return _tracer


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def configure_from_env() -> bool:
    """Set up the SDK from ``OTEL_*`` variables; ``True`` if tracing is on."""
    if _truthy("OTEL_SDK_DISABLED"):
        return False
    exporters = [e.strip() for e in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]
    if not exporters and (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                          or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        exporters = ["otlp"]
    exporters = [e for e in exporters if e != "none"]
    if not exporters:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": "responsa"}))
    for name in exporters:
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            log.warning("unknown OTEL_TRACES_EXPORTER %r ignored (otlp, console, none)", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    enable(provider)
    log.info("tracing on: exporting spans with %s", ", ".join(exporters))
    return True


def enable(provider: Any, *, capture: bool | None = None) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``; tests pass one
    with an in-memory exporter). Content capture follows the standard
    variable unless ``capture`` says otherwise."""
    global _tracer, _provider, capture_content
    _provider = provider
    _tracer = provider.get_tracer("responsa", __version__)
    capture_content = _truthy("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") if capture is None else capture


def disable() -> None:
    """Stop tracing, flushing what the provider still holds."""
    global _tracer, _provider
    provider, _tracer, _provider = _provider, None, None
    if provider is not None and hasattr(provider, "shutdown"):
        provider.shutdown()


def provider_name(kind: str, name: str) -> str:
    """``gen_ai.provider.name``: the well-known value for upstream families
    that have one, else the configured provider's name."""
    return {"openai-responses": "openai", "anthropic": "anthropic"}.get(kind, name)


def start_span(name: str, parent: Any, attributes: dict[str, Any], *, client: bool = False) -> Any:
    from opentelemetry.trace import SpanKind

    return _tracer.start_span(name, context=parent, kind=SpanKind.CLIENT if client else SpanKind.INTERNAL,
                              attributes={k: v for k, v in attributes.items() if v is not None})


def context_of(span: Any) -> Any:
    from opentelemetry import trace

    return trace.set_span_in_context(span)


def fail(span: Any, error_type: str, message: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, message))


def extract(headers: list[tuple[bytes, bytes]]) -> Any:
    """The caller's trace context (W3C ``traceparent``), if it sent one."""
    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k in (b"traceparent", b"tracestate")}
    if not carrier:
        return None
    from opentelemetry.propagate import extract as _extract

    return _extract(carrier)
