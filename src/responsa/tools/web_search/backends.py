"""Search backends for the server-side ``web_search`` tool.

One small interface (``Backend.search``), three implementations of public
search APIs, chosen in the config file::

    [web_search]
    backend = "searxng"                 # or "brave", "tavily"
    url = "http://127.0.0.1:8888"       # SearXNG: your instance; others: their API (default)
    api_key_env = "BRAVE_API_KEY"       # the NAME of the env var holding the key (never the key)
    max_results = 5
    timeout_s = 10

No ``[web_search]`` table means no backend: the tool is still accepted
(Codex sends it on every request) and a search the model makes ends as a
failed ``web_search_call`` that tells the model search is unavailable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

_KEYS = frozenset({"backend", "url", "api_key_env", "max_results", "timeout_s"})
_DEFAULT_URLS = {"brave": "https://api.search.brave.com/res/v1/web/search", "tavily": "https://api.tavily.com/search"}


@dataclass(frozen=True, slots=True)
class Result:
    title: str
    url: str
    snippet: str


class SearchUnavailable(Exception):
    """The backend could not answer; the message is safe to show the model."""


class Backend(Protocol):
    name: str

    async def search(self, query: str, *, max_results: int, domains: list[str]) -> list[Result]: ...


def _in_domains(url: str, domains: list[str]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return not domains or any(host == d or host.endswith("." + d) for d in domains)


@dataclass
class _HTTPBackend:
    """Shared plumbing; subclasses implement ``search``."""

    name: str
    url: str
    api_key_env: str | None
    timeout_s: float

    def _key(self) -> str:
        key = os.environ.get(self.api_key_env or "")
        if not key:
            raise SearchUnavailable(f"The {self.name} search backend has no API key: set the environment "
                                    f"variable {self.api_key_env or '(api_key_env)'}.")
        return key

    async def _call(self, method: str, *, params: dict[str, Any] | None = None, json: Any = None,
                    headers: dict[str, str] | None = None) -> Any:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                r = await client.request(method, self.url, params=params, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise SearchUnavailable(f"The {self.name} search backend is unreachable ({type(exc).__name__}).") \
                from None
        if r.status_code != 200:
            raise SearchUnavailable(f"The {self.name} search backend answered HTTP {r.status_code}.")
        try:
            return r.json()
        except ValueError:
            raise SearchUnavailable(f"The {self.name} search backend sent a reply that is not JSON.") from None


def _query(query: str, domains: list[str]) -> str:
    if not domains:
        return query
    return f"{query} (" + " OR ".join(f"site:{d}" for d in domains) + ")"


def _results(rows: Any, title: str, url: str, snippet: str, domains: list[str], n: int) -> list[Result]:
    out = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get(url), str) and _in_domains(row[url], domains):
            out.append(Result(str(row.get(title) or row[url]), row[url], str(row.get(snippet) or "")))
    return out[:n]


class SearXNG(_HTTPBackend):
    async def search(self, query: str, *, max_results: int, domains: list[str]) -> list[Result]:
        self.url = self.url.rstrip("/")
        if not self.url.endswith("/search"):
            self.url += "/search"
        data = await self._call("GET", params={"q": _query(query, domains), "format": "json"},
                                headers={"X-API-Key": self._key()} if self.api_key_env else None)
        return _results(data.get("results"), "title", "url", "content", domains, max_results)


class Brave(_HTTPBackend):
    async def search(self, query: str, *, max_results: int, domains: list[str]) -> list[Result]:
        data = await self._call("GET", params={"q": _query(query, domains), "count": max_results},
                                headers={"X-Subscription-Token": self._key(), "Accept": "application/json"})
        return _results((data.get("web") or {}).get("results"), "title", "url", "description", domains,
                        max_results)


class Tavily(_HTTPBackend):
    async def search(self, query: str, *, max_results: int, domains: list[str]) -> list[Result]:
        body: dict[str, Any] = {"query": query, "max_results": max_results}
        if domains:
            body["include_domains"] = domains
        data = await self._call("POST", json=body, headers={"Authorization": f"Bearer {self._key()}"})
        return _results(data.get("results"), "title", "url", "content", domains, max_results)


_KINDS: dict[str, type[SearXNG | Brave | Tavily]] = {"searxng": SearXNG, "brave": Brave, "tavily": Tavily}


@dataclass(frozen=True, slots=True)
class SearchConfig:
    backend: Backend | None
    max_results: int = 5


def from_config(table: dict[str, Any]) -> SearchConfig:
    """The ``[web_search]`` table, checked at start-up (a ``ValueError`` names the bad key)."""
    if not table:
        return SearchConfig(None)
    if unknown := sorted(set(table) - _KEYS):
        raise ValueError(f"Unknown key in [web_search]: {unknown[0]!r} (known: {', '.join(sorted(_KEYS))}).")
    kind = table.get("backend")
    if kind not in _KINDS:
        raise ValueError(f"[web_search] backend must be one of {', '.join(sorted(_KINDS))}; got {kind!r}.")
    url = table.get("url") or _DEFAULT_URLS.get(kind)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"[web_search] url must be an http(s) URL (required for {kind}).")
    key_env = table.get("api_key_env")
    if key_env is None and kind != "searxng":
        raise ValueError(f"[web_search] api_key_env must name the env var holding the {kind} API key.")
    max_results = table.get("max_results", 5)
    if not isinstance(max_results, int) or not 1 <= max_results <= 20:
        raise ValueError("[web_search] max_results must be an integer from 1 to 20.")
    timeout = table.get("timeout_s", 10)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError("[web_search] timeout_s must be a positive number.")
    return SearchConfig(_KINDS[kind](kind, url, key_env, float(timeout)), max_results)
