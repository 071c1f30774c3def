"""Structured logs: one JSON object per line (for a log pipeline), or a
human-readable line when stderr is a terminal.

The access log (logger ``responsa.access``) writes exactly one line per
request with the request id, tenant hash, route, model, status, latencies
and token counts. It never carries a secret or any content: API keys
appear only as the tenant hash, and neither prompts nor outputs are logged.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Any, Literal

import orjson

ACCESS = logging.getLogger("responsa.access")

LogFormat = Literal["auto", "json", "text"]

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...extra fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in ("fields", "color_message"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """The human format: time, level, logger, message, then ``key=value`` fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return line


class AccessWriter:
    """The JSON access line written straight to the stream: the same object
    ``JsonFormatter`` would produce, without a ``LogRecord``, a formatter and
    a handler lock per request (about a third of the per-request cost of
    observability, see ``benchmarks/observability_cost.py``). The line holds
    no secret by construction (hashes, route templates, counters), so the
    record-level redaction has nothing to do here."""

    __slots__ = ("_second", "_stamp", "stream")

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._second = -1
        self._stamp = ""

    def write(self, message: str, fields: dict[str, Any]) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        line = {"ts": f"{self._stamp}.{int((now - second) * 1000):03d}Z", "level": "info",
                "logger": "responsa.access", "message": message, **fields}
        with contextlib.suppress(OSError, ValueError):  # a closed or broken log stream must not fail the request
            self.stream.write(orjson.dumps(line).decode() + "\n")


access_writer: AccessWriter | None = None
"""Set by ``configure`` for JSON output; ``None``: the access line goes
through the ``responsa.access`` logger (text format, or logging set up by
the embedding application)."""


def configure(level: str = "info", fmt: LogFormat = "auto", *, access: bool = True,
              stream: Any = None) -> None:
    """Route every ``responsa`` (and uvicorn) log record through one handler
    on stderr: JSON unless ``fmt`` is ``text`` or (``auto``) stderr is a
    terminal. The access log follows ``access`` rather than ``level``, so
    ``--log-level warning`` still keeps one line per request."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "text" if getattr(stream, "isatty", lambda: False)() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter() if fmt == "text" else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # ours replaces it: one line per request, not two
    global access_writer
    access_writer = AccessWriter(stream) if access and fmt == "json" else None
    ACCESS.setLevel(logging.INFO if access else logging.CRITICAL + 1)
    ACCESS.propagate = False
    ACCESS.handlers[:] = [handler]
