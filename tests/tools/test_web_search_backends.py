"""The search backends against a fake search service on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from responsa.tools.web_search.backends import SearchUnavailable, from_config
from tests.fakes.search import KEY, FakeSearch
from tests.helpers import serve_in_thread


@pytest.fixture(scope="module")
def search() -> Iterator[tuple[FakeSearch, str]]:
    fake = FakeSearch()
    with serve_in_thread(fake.app) as url:
        yield fake, url


@pytest.mark.parametrize(("kind", "path"), [("searxng", ""), ("brave", "/res/v1/web/search"),
                                            ("tavily", "/tavily/search")])
async def test_each_backend_finds_and_filters(search: tuple[FakeSearch, str], kind: str, path: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = search
    monkeypatch.setenv("FAKE_SEARCH_KEY", KEY)
    table = {"backend": kind, "url": url + path, "max_results": 3}
    if kind != "searxng":
        table["api_key_env"] = "FAKE_SEARCH_KEY"
    cfg = from_config(table)
    assert cfg.backend is not None
    found = await cfg.backend.search("rust async", max_results=cfg.max_results, domains=[])
    assert [r.url for r in found] == ["https://docs.example.com/rust-async", "https://news.example.org/rust-async"]
    only = await cfg.backend.search("rust async", max_results=3, domains=["example.org"])
    assert [r.url for r in only] == ["https://news.example.org/rust-async"]
    assert KEY not in repr(cfg)


async def test_failures_are_search_unavailable(search: tuple[FakeSearch, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = search
    backend = from_config({"backend": "searxng", "url": url}).backend
    assert backend is not None
    with pytest.raises(SearchUnavailable, match="HTTP 500"):
        await backend.search("fail please", max_results=2, domains=[])
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    brave = from_config({"backend": "brave", "url": url + "/res/v1/web/search", "api_key_env": "NO_SUCH_KEY"})
    assert brave.backend is not None
    with pytest.raises(SearchUnavailable, match="NO_SUCH_KEY"):
        await brave.backend.search("x", max_results=2, domains=[])
    dead = from_config({"backend": "searxng", "url": "http://127.0.0.1:9"}).backend
    assert dead is not None
    with pytest.raises(SearchUnavailable, match="unreachable"):
        await dead.search("x", max_results=2, domains=[])


@pytest.mark.parametrize("table", [{"backend": "google"}, {"backend": "brave"}, {"backend": "searxng"},
                                   {"backend": "searxng", "url": "ftp://x"}, {"backend": "searxng", "url": "http://x",
                                                                           "max_results": 0},
                                   {"backend": "searxng", "url": "http://x", "api_key": "inline-secret"}])
def test_bad_config_is_refused_at_start(table: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"\[web_search\]"):
        from_config(table)
