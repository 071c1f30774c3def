"""Secrets never reach a log line, whoever logs them.

Redaction happens at the logging layer, not at each call site: the lines
that leaked were written by libraries (the ``websockets`` handshake logs
every request header at DEBUG, the MCP SDK's HTTP client logs each request
URL at INFO, uvicorn's access log prints query strings), so no amount of
care in our own code could have caught them.

``install()`` wraps the process's log-record factory, so every record is
redacted once, when it is created (only records that pass the logger's
level are ever created, so a silenced DEBUG costs nothing), before any
handler, formatter or filter of any logger sees it. Redacted: values of
credential headers (``authorization``, ``x-api-key``, cookies, ...), bearer
tokens, URL userinfo (``https://user:pass@host``), and query parameters
named like secrets (``?api_key=``, ``&token=``, ...), in the message, its
arguments and a formatted traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

_NAMES = (r"(?:proxy-)?authorization|x-api-key|api[-_]key|x-auth-token|cookie|set-cookie|x-goog-api-key"
          r"|anthropic-api-key")
_HEADER = re.compile(  # "authorization: Bearer x", "'authorization': 'x'", "(b'x-api-key', b'x')"
    rf"(?i)(?P<name>\b(?:{_NAMES}))(?P<sep>(?:['\"]\s*[:,]\s*b?['\"])|(?:\s*:\s*))(?P<value>[^'\"\r\n]+)")
_ASSIGN = re.compile(rf"(?i)(?P<name>\b(?:{_NAMES}))(?P<sep>\s*=\s*['\"]?)(?P<value>[^'\"\s&,)]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{4,}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")
_QUERY = re.compile(
    r"(?i)([?&;](?:api[-_]?key|key|token|access[-_]?token|refresh[-_]?token|id[-_]?token|auth|authorization"
    r"|secret|client[-_]?secret|password|passwd|pwd|sig|signature|session|code|credentials?)=)[^&#\s'\"]*")


def redact(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``[redacted]``."""
    if not text:
        return text
    text = _HEADER.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    text = _ASSIGN.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", text)
    text = _USERINFO.sub(lambda m: f"{m[1]}{REDACTED}@", text)
    return _QUERY.sub(lambda m: f"{m[1]}{REDACTED}", text)


_formatter = logging.Formatter()


def _clean_arg(arg: object) -> object:
    if arg is None or isinstance(arg, int | float):
        return arg
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    clean = redact(text)
    return arg if clean == text else clean


def _scrub(record: logging.LogRecord) -> None:
    """Redact the arguments one by one (formatters such as uvicorn's access
    log unpack them), then the whole message, which catches a secret split
    over two arguments (``"< %s: %s", "x-api-key", key``)."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_clean_arg(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _clean_arg(v) for k, v in record.args.items()}
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep the template, drop the arguments
        message = f"{record.msg} (unformattable arguments dropped)"
        record.msg, record.args = message, None
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(_formatter.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


_installed = False


def install() -> None:
    """Redact every log record this process creates from now on (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _scrub(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
