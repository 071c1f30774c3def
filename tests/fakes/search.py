"""A fake web search service speaking the SearXNG, Brave and Tavily APIs.

Every query gets two deterministic results on ``docs.example.com`` and
``news.example.org``; the query ``fail`` answers HTTP 500. Requests are
recorded (with their headers) so tests can check the key was sent as the
backend expects and the query carried the domain filter.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Json = dict[str, Any]
KEY = "fake-search-key"


def results_for(query: str) -> list[Json]:
    slug = re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-")[:40] or "q"
    return [{"title": f"Docs about {query}", "url": f"https://docs.example.com/{slug}",
             "snippet": f"Everything about {query}."},
            {"title": f"News on {query}", "url": f"https://news.example.org/{slug}",
             "snippet": f"Latest on {query}."}]


class FakeSearch:
    def __init__(self) -> None:
        self.requests: list[tuple[str, Json, dict[str, str]]] = []
        self.app = Starlette(routes=[
            Route("/search", self._searxng, methods=["GET"]),
            Route("/res/v1/web/search", self._brave, methods=["GET"]),
            Route("/tavily/search", self._tavily, methods=["POST"]),
        ])

    def _record(self, kind: str, request: Request, args: Json) -> str:
        """The query without its ``(site:a OR site:b)`` filter (results ignore it)."""
        self.requests.append((kind, args, dict(request.headers)))
        return re.sub(r"\s*\(site:[^)]*\)$", "", str(args.get("q") or args.get("query") or ""))

    async def _searxng(self, request: Request) -> Response:
        q = self._record("searxng", request, dict(request.query_params))
        if q.startswith("fail"):
            return Response("boom", 500)
        return JSONResponse({"query": q, "results": [
            {"title": r["title"], "url": r["url"], "content": r["snippet"]} for r in results_for(q)]})

    async def _brave(self, request: Request) -> Response:
        q = self._record("brave", request, dict(request.query_params))
        if request.headers.get("x-subscription-token") != KEY:
            return Response("unauthorized", 401)
        return JSONResponse({"web": {"results": [
            {"title": r["title"], "url": r["url"], "description": r["snippet"]} for r in results_for(q)]}})

    async def _tavily(self, request: Request) -> Response:
        body = await request.json()
        q = self._record("tavily", request, body)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return Response("unauthorized", 401)
        rows = [r for r in results_for(q) if not body.get("include_domains")
                or any(d in r["url"] for d in body["include_domains"])]
        return JSONResponse({"results": [{"title": r["title"], "url": r["url"], "content": r["snippet"]}
                                         for r in rows]})
