"""``Responsa`` / ``AsyncResponsa``: the reference method's exact signature
(``client.responses.create`` with its 31 keyword parameters) over httpx,
typed like openai-python: ``create(stream=True)`` is an iterator of events,
``create()`` a ``Response``.

Request building and response parsing are shared; only the transport
differs between the sync and async twins. Every POST carries one
``Idempotency-Key`` reused across retries, so a retried request can never
create a second response.
"""

from __future__ import annotations

import inspect
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal, TypedDict, TypeVar, Unpack, overload

import anyio
import httpx
import orjson

from responsa.client.types import APIStatusError, InputItemList, Response, ResponseDeleted, ResponseEvent

_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
DEFAULT_BASE_URL = "http://127.0.0.1:8080"


def _body(params: dict[str, Any]) -> dict[str, Any]:
    """Unset parameters are omitted, never sent as null (the server treats
    an explicit null like an omission, but logs stay readable)."""
    return {k: v for k, v in params.items() if v is not None and not (k == "stream" and v is False)}


def _base_url(base_url: str | None) -> str:
    url = (base_url or os.environ.get("RESPONSA_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    return url.removesuffix("/v1")


def _headers(api_key: str | None) -> dict[str, str]:
    key = api_key or os.environ.get("RESPONSA_API_KEY")
    return {"authorization": f"Bearer {key}"} if key else {}


def _check(resp: httpx.Response) -> Any:
    body = orjson.loads(resp.content) if resp.content else None
    if resp.status_code >= 400:
        raise APIStatusError(resp.status_code, body)
    return body


def _backoff(attempt: int) -> float:
    return float(min(0.5 * 2**attempt, 8.0))


def _sse_events(lines: Iterator[str]) -> Iterator[ResponseEvent]:
    for line in lines:
        if line.startswith("data: "):
            data = line[6:]
            if data == "[DONE]":
                return
            yield ResponseEvent.model_validate(orjson.loads(data))


class CreateParams(TypedDict, total=False):
    """The reference method's parameters except ``stream``, written once.

    ``stream`` is not here because it decides the return type: each
    ``create`` takes it as its own keyword, ``@overload``-ed on
    ``Literal[True]`` / ``Literal[False]`` like openai-python, and the rest
    as ``**params: Unpack[CreateParams]``. At run time ``create`` exposes
    the full reference signature (``inspect.signature``, ``help()``),
    built from this class."""

    background: bool | None
    conversation: dict[str, Any] | str | None
    credentials: dict[str, Any] | list[dict[str, Any]] | None
    frequency_penalty: float | None
    include: list[str] | None
    input: str | list[dict[str, Any]] | None
    instructions: str | list[dict[str, Any]] | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    mcp_servers: dict[str, Any] | str | list[Any] | None
    metadata: dict[str, str] | None
    model: str | dict[str, Any] | list[Any] | None
    parallel_tool_calls: bool | None
    presence_penalty: float | None
    previous_response_id: str | None
    prompt: dict[str, Any] | None
    prompt_cache_key: str | None
    reasoning: dict[str, Any] | None
    safety_identifier: str | None
    service_tier: Literal["auto", "default"] | None
    store: bool | None
    # stream: bool = False -- here in the reference order, see _PARAMETERS
    stream_options: dict[str, Any] | None
    temperature: float | None
    text: dict[str, Any] | None
    tool_choice: str | dict[str, Any] | None
    tools: list[dict[str, Any]] | None
    top_logprobs: int | None
    top_p: float | None
    truncation: Literal["auto", "disabled"] | None
    user: str | None


def _reference_parameters() -> list[inspect.Parameter]:
    """``CreateParams`` as keyword-only parameters (default ``None``) with
    ``stream: bool = False`` in its place, in the reference method's order."""
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter(name, kw, default=None, annotation=getattr(annotation, "__forward_arg__", annotation))
              for name, annotation in CreateParams.__annotations__.items()]
    at = [p.name for p in params].index("stream_options")
    params.insert(at, inspect.Parameter("stream", kw, default=False, annotation="bool"))
    return params


_PARAMETERS = _reference_parameters()
_NAMES = frozenset(p.name for p in _PARAMETERS)


def create_params(**params: Any) -> dict[str, Any]:
    """The request body for the reference method's keyword parameters
    (``TypeError`` for any other, as a real signature would)."""
    for name in params:
        if name not in _NAMES:
            raise TypeError(f"create() got an unexpected keyword argument '{name}'")
    return _body(params)


create_params.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    _PARAMETERS, return_annotation="dict[str, Any]")

F = TypeVar("F", bound=Callable[..., Any])


def _reference_signature(method: F) -> F:
    """Give a ``create(self, *, stream, **params)`` method the reference
    method's full parameter list at run time (``help()``, IDEs that inspect,
    the signature test)."""
    method.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *_PARAMETERS],
        return_annotation=inspect.signature(method).return_annotation)
    return method


class Responses:
    def __init__(self, client: Responsa) -> None:
        self._client = client
        self.input_items = _InputItems(client)

    @overload
    def create(self, *, stream: Literal[False] = False, **params: Unpack[CreateParams]) -> Response: ...

    @overload
    def create(self, *, stream: Literal[True], **params: Unpack[CreateParams]) -> Iterator[ResponseEvent]: ...

    @overload
    def create(self, *, stream: bool, **params: Unpack[CreateParams]) -> Response | Iterator[ResponseEvent]: ...

    @_reference_signature
    def create(self, *, stream: bool = False, **params: Unpack[CreateParams]) -> Response | Iterator[ResponseEvent]:
        """Create a response. With ``stream=True``, an iterator of typed events."""
        body = create_params(stream=stream, **params)
        if stream:
            return self._client._stream("/v1/responses", body)
        return Response.model_validate(self._client._request("POST", "/v1/responses", body))

    def retrieve(self, response_id: str) -> Response:
        return Response.model_validate(self._client._request("GET", f"/v1/responses/{response_id}"))

    def delete(self, response_id: str) -> ResponseDeleted:
        return ResponseDeleted.model_validate(self._client._request("DELETE", f"/v1/responses/{response_id}"))


class _InputItems:
    def __init__(self, client: Responsa) -> None:
        self._client = client

    def list(self, response_id: str, *, after: str | None = None, before: str | None = None,
             limit: int | None = None, order: Literal["asc", "desc"] | None = None) -> InputItemList:
        query = _body({"after": after, "before": before, "limit": limit, "order": order})
        return InputItemList.model_validate(
            self._client._request("GET", f"/v1/responses/{response_id}/input_items", params=query))


class Responsa:
    """Synchronous client. ``base_url`` may include ``/v1`` or not."""

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None, timeout: float = 600.0,
                 max_retries: int = 2) -> None:
        self.max_retries = max_retries
        self._http = httpx.Client(base_url=_base_url(base_url), headers=_headers(api_key), timeout=timeout)
        self.responses = Responses(self)

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                 params: dict[str, Any] | None = None) -> Any:
        headers = {"idempotency-key": f"responsa-{uuid.uuid4()}"} if method == "POST" else {}
        for attempt in range(self.max_retries + 1):
            try:
                resp = self._http.request(method, path, json=body, params=params, headers=headers)
            except httpx.TransportError:
                if attempt == self.max_retries:
                    raise
            else:
                if resp.status_code not in _RETRY_STATUS or attempt == self.max_retries:
                    return _check(resp)
            time.sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    def _stream(self, path: str, body: dict[str, Any]) -> Iterator[ResponseEvent]:
        with self._http.stream("POST", path, json=body) as resp:
            if resp.status_code >= 400:
                resp.read()
                _check(resp)
            yield from _sse_events(resp.iter_lines())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Responsa:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncResponses:
    def __init__(self, client: AsyncResponsa) -> None:
        self._client = client
        self.input_items = _AsyncInputItems(client)

    @overload
    async def create(self, *, stream: Literal[False] = False, **params: Unpack[CreateParams]) -> Response: ...

    @overload
    async def create(self, *, stream: Literal[True],
                     **params: Unpack[CreateParams]) -> AsyncIterator[ResponseEvent]: ...

    @overload
    async def create(self, *, stream: bool,
                     **params: Unpack[CreateParams]) -> Response | AsyncIterator[ResponseEvent]: ...

    @_reference_signature
    async def create(self, *, stream: bool = False,
                     **params: Unpack[CreateParams]) -> Response | AsyncIterator[ResponseEvent]:
        """Create a response. With ``stream=True``, an async iterator of typed events."""
        body = create_params(stream=stream, **params)
        if stream:
            return self._client._stream("/v1/responses", body)
        return Response.model_validate(await self._client._request("POST", "/v1/responses", body))

    async def retrieve(self, response_id: str) -> Response:
        return Response.model_validate(await self._client._request("GET", f"/v1/responses/{response_id}"))

    async def delete(self, response_id: str) -> ResponseDeleted:
        return ResponseDeleted.model_validate(
            await self._client._request("DELETE", f"/v1/responses/{response_id}"))


class _AsyncInputItems:
    def __init__(self, client: AsyncResponsa) -> None:
        self._client = client

    async def list(self, response_id: str, *, after: str | None = None, before: str | None = None,
                   limit: int | None = None, order: Literal["asc", "desc"] | None = None) -> InputItemList:
        query = _body({"after": after, "before": before, "limit": limit, "order": order})
        return InputItemList.model_validate(
            await self._client._request("GET", f"/v1/responses/{response_id}/input_items", params=query))


class AsyncResponsa:
    """Asynchronous twin of ``Responsa``."""

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None, timeout: float = 600.0,
                 max_retries: int = 2) -> None:
        self.max_retries = max_retries
        self._http = httpx.AsyncClient(base_url=_base_url(base_url), headers=_headers(api_key), timeout=timeout)
        self.responses = AsyncResponses(self)

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                       params: dict[str, Any] | None = None) -> Any:
        headers = {"idempotency-key": f"responsa-{uuid.uuid4()}"} if method == "POST" else {}
        for attempt in range(self.max_retries + 1):
            try:
                resp = await self._http.request(method, path, json=body, params=params, headers=headers)
            except httpx.TransportError:
                if attempt == self.max_retries:
                    raise
            else:
                if resp.status_code not in _RETRY_STATUS or attempt == self.max_retries:
                    return _check(resp)
            await anyio.sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    async def _stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[ResponseEvent]:
        async with self._http.stream("POST", path, json=body) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                _check(resp)
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    if line[6:] == "[DONE]":
                        return
                    yield ResponseEvent.model_validate(orjson.loads(line[6:]))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncResponsa:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
