"""What every fake upstream does the same way: record each request (body and
headers) so tests can assert the translation that produced it, count how
often each script was asked for (``fail-once``), list its models, and answer
errors in its API's JSON shape."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

Json = dict[str, Any]


def text_of(content: Any) -> str:
    """The text of a message ``content``: a string, or the parts' texts joined by spaces."""
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or () if isinstance(p, dict))


def json_response(status: int, payload: Json) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def openai_error(status: int, message: str, etype: str, param: str | None = None,
                 code: str | None = None) -> Response:
    """An error in OpenAI's shape (Chat Completions and Responses alike)."""
    return json_response(status, {"error": {"message": message, "type": etype, "param": param, "code": code}})


class FakeUpstream:
    """Base of the fakes: subclasses pass their API routes and list ``MODELS``."""

    MODELS: ClassVar[Sequence[str]] = ()

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.requests: list[Json] = []
        self.headers: list[dict[str, str]] = []
        self.seen: Counter[str] = Counter()
        self.app = Starlette(routes=[*routes, Route("/v1/models", self._models, methods=["GET"])])

    @property
    def last(self) -> Json:
        """The body of the latest request."""
        return self.requests[-1]

    def reset(self) -> None:
        self.requests.clear()
        self.headers.clear()
        self.seen.clear()

    async def record(self, request: Request) -> Json:
        """Parse and record a request; returns its JSON body."""
        body: Json = orjson.loads(await request.body())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        return body

    def models_page(self) -> Json:
        """``GET /v1/models`` in OpenAI's shape; Anthropic's fake overrides it."""
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                                           for m in self.MODELS]}

    async def _models(self, request: Request) -> Response:
        return json_response(200, self.models_page())
