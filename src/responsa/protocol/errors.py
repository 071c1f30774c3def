"""The one error hierarchy, and the one place the OpenAI error shape is written.

Every failure a client can see is a ``ResponsaError`` (a request it got
wrong, a missing resource, an upstream that failed, a server fault). Its
``status``/``type``/``code`` say how it is reported; the renderers below
turn it into each form a client meets:

- ``error_body``: a JSON error response ``{"error": {...}}``;
- ``error_object``: the payload of an SSE ``error`` event;
- ``stored_error``: ``response.error`` of a failed Response (and back,
  ``from_stored``, so a replayed or retried failure keeps its real type);
- ``ws_frame``: a WebSocket error frame ``{"type": "error", "status", "error"}``;
- ``anthropic_body``: Anthropic's shape ``{"type": "error", "error": {"type", "message"}}``,
  which the Messages front door answers in (``body_for`` picks by path).

Nothing else writes ``{"message", "type", "param", "code"}`` by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from responsa.protocol.types import ErrorObject, StoredError

_TYPE_OF_STATUS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
                   413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}
_STATUS_OF_TYPE = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                   "rate_limit_error": 429}


def type_for_status(status: int) -> str:
    """The OpenAI error type of an HTTP status (5xx: ``server_error``)."""
    return _TYPE_OF_STATUS.get(status, "server_error" if status >= 500 else "invalid_request_error")


class ResponsaError(Exception):
    """Root of every error reported to a client. ``type`` defaults from
    ``status``; ``retryable`` says whether a fallback model may be tried
    instead (only meaningful for upstream failures, before any output)."""

    default_status = 400
    default_code: str | None = None
    retryable = False

    def __init__(self, message: str, *, status: int | None = None, type: str | None = None,
                 param: str | None = None, code: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else self.default_status
        self.type = type or type_for_status(self.status)
        self.param = param
        self.code = code if code is not None else self.default_code
        if retryable is not None:
            self.retryable = retryable


APIError = ResponsaError
"""The name most of the code base raises (kept: it reads well at call sites)."""


class InvalidRequest(ResponsaError):
    default_status = 400
    default_code = "invalid_value"


class NotFound(ResponsaError):
    default_status = 404
    default_code = "not_found"


class Conflict(ResponsaError):
    default_status = 409


class ServerError(ResponsaError):
    """A fault of this server (never the client's): 500 ``server_error``."""

    default_status = 500
    default_code = "server_error"

    def __init__(self, message: str = "The server had an error while processing your request.", *,
                 code: str | None = None) -> None:
        super().__init__(message, code=code)


class UpstreamError(ResponsaError):
    """An upstream (model provider) failure: 502 ``server_error`` unless the
    provider maps it more precisely (429 rate limit, 400 for a request the
    upstream rejected). Retryable on the next model of a fallback list."""

    default_status = 502
    default_code = "upstream_error"
    retryable = True


# -- the renderers: the OpenAI error shape is written here and nowhere else --


def error_object(exc: ResponsaError) -> ErrorObject:
    return {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}


def error_body(exc: ResponsaError) -> dict[str, ErrorObject]:
    """A JSON error response body."""
    return {"error": error_object(exc)}


_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 405: "invalid_request_error", 409: "invalid_request_error",
                    413: "request_too_large", 422: "invalid_request_error", 429: "rate_limit_error",
                    503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error"}
ANTHROPIC_PATHS = ("/v1/messages",)
"""The Anthropic Messages API's routes: every error on them is in Anthropic's
shape (the ``anthropic`` SDK and Claude Code read ``error.type``)."""


def anthropic_body(exc: ResponsaError) -> dict[str, Any]:
    """Anthropic's error shape; its types are per status (5xx: ``api_error``)."""
    etype = _ANTHROPIC_TYPES.get(exc.status, "api_error" if exc.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": etype, "message": exc.message}}


def body_for(exc: ResponsaError, path: str) -> dict[str, Any]:
    """The error body for a request to ``path``: Anthropic's shape on the
    Messages routes, OpenAI's everywhere else."""
    if path.startswith(ANTHROPIC_PATHS):
        return anthropic_body(exc)
    return dict(error_body(exc))


def ws_frame(exc: ResponsaError) -> dict[str, Any]:
    """A WebSocket error frame; ``code`` is never null there (clients switch on it)."""
    obj = error_object(exc)
    obj["code"] = exc.code or exc.type
    return {"type": "error", "status": exc.status, "error": obj}


def stored_error(exc: ResponsaError) -> StoredError:
    """``response.error`` of a failed Response (the spec requires a string ``code``)."""
    return {"code": exc.code or exc.type, "message": exc.message, "type": exc.type, "param": exc.param}


def from_stored(error: dict[str, Any] | None) -> ResponsaError:
    """The error a stored ``response.error`` records, as it was raised; its
    HTTP status follows from its type and code (an upstream's fault is a
    502, ours a 500). Records written before ``type`` was kept read as a
    502 ``server_error``."""
    error = error or {}
    etype = str(error.get("type") or "server_error")
    code = error.get("code")
    status = _STATUS_OF_TYPE.get(etype, 500 if code == "server_error" else 502)
    if status == 400 and isinstance(code, str) and code.endswith("not_found"):
        status = 404
    return ResponsaError(str(error.get("message") or "The response failed."), status=status, type=etype,
                         param=error.get("param"), code=code)


def invalid(message: str, param: str | None = None, code: str | None = "invalid_value") -> ResponsaError:
    exc = InvalidRequest(message, param=param)
    exc.code = code
    return exc


def not_found(message: str, param: str | None = None, code: str | None = "not_found") -> ResponsaError:
    exc = NotFound(message, param=param)
    exc.code = code
    return exc


# -- parameter names: a front door's errors name its own parameters ----------


def renamed(exc: ResponsaError, new: str) -> ResponsaError:
    """``exc`` naming parameter ``new`` instead of its own (in its message too)."""
    old = exc.param
    if old and new != old:
        exc.message = exc.message.replace(f"'{old}'", f"'{new}'")
        exc.param = new
    return exc


def rename_prefix(exc: ResponsaError, table: Sequence[tuple[str, str]]) -> ResponsaError:
    """``exc`` with the first matching ``(old prefix, new prefix)`` of ``table`` applied to its param."""
    param = exc.param or ""
    for old, new in table:
        if param.startswith(old):
            return renamed(exc, new + param[len(old):])
    return exc


def rename_input(exc: ResponsaError, origins: Sequence[str], whole: str) -> ResponsaError:
    """An error naming input item ``i`` (``input[i].content[0]``) names what
    the door made that item from (``origins[i]`` + the rest); ``input`` itself is ``whole``."""
    param = exc.param or ""
    if param == "input":
        return renamed(exc, whole)
    if param.startswith("input[") and "]" in param:
        index, _, rest = param[len("input["):].partition("]")
        origin = origins[int(index)] if index.isdigit() and int(index) < len(origins) else whole
        return renamed(exc, origin + rest)
    return exc
