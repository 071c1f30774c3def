"""The end-to-end fixture: a real Responsa server (uvicorn on a free port,
SQLite file store, deterministic test model) shared by the session; and the
one place that decides which tests are ``slow``.

Two tiers: ``pytest`` runs everything (what ``make test`` and CI run);
``pytest -m "not slow"`` is the inner loop, a few seconds: protocol, config,
client, providers against the in-process fake upstreams, the SQLite store.
Slow is everything end to end on a Responsa server (``server``,
``serve_responsa``), and what needs more than this process: PostgreSQL or
Redis, the embedded model, processes, long property-based runs.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import anthropic
import httpx
import httpx2
import pytest
from openai import OpenAI

from responsa.config import load_settings
from tests.door_checks import checked_http
from tests.helpers import Serve
from tests.helpers import serve_responsa as _serve_responsa

# The embedded model's llama.cpp threads spin-wait on each other: with the
# test servers, fakes and MCP servers sharing two cores, one thread is the
# fast and predictable choice (inherited by servers tests start as processes).
os.environ.setdefault("RESPONSA_LOCAL_THREADS", "1")


SLOW_CODE = re.compile(r"(create_app|serve_responsa|server_process)\b|\bsubprocess\.|\bPopen\(|"
                       r"\bLocalProvider\(|\.gguf\b")
"""A test is slow when its body, a fixture it uses or a test helper it calls
starts a Responsa server or a process, or loads a model (the embedded one or
a GGUF file). Read from the code itself, so a new test or fixture is
classified without anyone remembering a decorator."""

SLOW_FIXTURES = {
    "pg_url": "needs PostgreSQL",
    "redis_url": "needs Redis",
    "local": "runs the embedded model",
    "minilm": "runs the local embedding model",
}
"""Fixtures that make a test slow by what they reach (directly or through another fixture)."""

SLOW_PARAMS = {("store_url", "postgres"): "needs PostgreSQL"}
"""The same for parametrized fixtures whose slow case picks its fixture at run time."""


def _starts_servers(func: Callable[..., object], seen: set[object] | None = None) -> bool:
    """Whether ``func``'s code, or a test helper it calls (followed through
    the functions of ``tests.*`` modules it names), matches ``SLOW_CODE``."""
    if func in _VERDICTS:
        return _VERDICTS[func]
    seen = seen if seen is not None else set()
    seen.add(func)
    try:
        verdict = SLOW_CODE.search(inspect.getsource(func)) is not None
    except (OSError, TypeError):  # no source (a builtin fixture)
        verdict = False
    if not verdict:
        verdict = any(_starts_servers(callee, seen) for callee in _helpers_called(func) if callee not in seen)
    _VERDICTS[func] = verdict
    return verdict


_VERDICTS: dict[object, bool] = {}


def _helpers_called(func: Callable[..., object]) -> list[Callable[..., object]]:
    """The functions of the test tree that ``func`` (or a function nested in
    it) names, directly or in a module-level table (list, tuple, dict) of them."""
    code = getattr(func, "__code__", None)
    if code is None:
        return []
    names: set[str] = set()
    codes = [code]
    while codes:
        c = codes.pop()
        names.update(c.co_names)
        codes.extend(k for k in c.co_consts if inspect.iscode(k))
    found = [getattr(func, "__globals__", {}).get(n) for n in names]
    for table in [v for v in found if isinstance(v, list | tuple | dict)]:  # dispatch tables of helpers
        rows = table.values() if isinstance(table, dict) else table
        found += [x for row in rows for x in (row if isinstance(row, tuple | list) else (row,))]
    found += [m for c in found if inspect.isclass(c) for m in vars(c).values()]  # a helper class's methods
    funcs = [inspect.unwrap(f) for f in found if inspect.isfunction(f)]  # through @contextmanager & co
    return [f for f in funcs if f.__code__.co_filename.startswith(_TESTS)]


_TESTS = str(Path(__file__).parent)


def _slow_reason(item: pytest.Item) -> str | None:
    fixtures = set(getattr(item, "fixturenames", ()))
    for name, why in SLOW_FIXTURES.items():
        if name in fixtures:
            return why
    params = getattr(getattr(item, "callspec", None), "params", {})
    for (name, value), why in SLOW_PARAMS.items():
        if params.get(name) == value:
            return why
    info = getattr(item, "_fixtureinfo", None)
    defs = [d for ds in (info.name2fixturedefs.values() if info else ()) for d in ds]
    funcs = [getattr(item, "function", None), *(d.func for d in defs)]
    if any(f is not None and _starts_servers(f) for f in funcs):
        return "end to end: starts a Responsa server or a process"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` what the unit tier leaves out; explicit
    ``@pytest.mark.slow`` covers the rest (timers, mypy, MCP stdio processes)."""
    for item in items:
        if (why := _slow_reason(item)) is not None:
            item.add_marker(pytest.mark.slow(reason=why))


UNIT_BUDGET_S = 1.0
"""A test in the unit tier that takes longer than this is named at the end
of a ``-m "not slow"`` run, so the tier stays a few seconds as tests are added."""
_over_budget: list[tuple[float, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.duration > UNIT_BUDGET_S and "slow" not in report.keywords:
        _over_budget.append((report.duration, f"{report.nodeid} ({report.when})"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if "not slow" in (config.getoption("markexpr", "") or "") and _over_budget:
        terminalreporter.section("unit tier over budget")
        terminalreporter.write_line(f"Over {UNIT_BUDGET_S} s: mark them @pytest.mark.slow or make them fast.")
        for duration, what in sorted(_over_budget, reverse=True):
            terminalreporter.write_line(f"  {duration:.2f}s {what}")


@pytest.fixture(scope="session")
def db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("db")) / "responsa.db"


@pytest.fixture(scope="session")
def server(db_file: Path) -> Iterator[str]:
    """Base URL (no ``/v1``) of a running server."""
    settings = load_settings(None, database_url=f"sqlite:///{db_file}", default_model="test/echo",
                             mcp_allow_private=["127.0.0.1", "localhost"])
    with _serve_responsa(settings) as url:
        yield url


@pytest.fixture(scope="session")
def serve_responsa() -> Serve:
    """Starts another Responsa server: ``with serve_responsa(server_settings(tmp, ...)) as url``."""
    return _serve_responsa


@pytest.fixture
def client(server: str) -> OpenAI:
    return OpenAI(base_url=f"{server}/v1", api_key="test-key", max_retries=0)


@pytest.fixture(scope="module")
def claude(server: str) -> Iterator[anthropic.Anthropic]:
    """The ``anthropic`` SDK on ``server`` (a module may serve its own); every
    Messages body it reads is validated strictly (tests/door_checks.py)."""
    with checked_http(httpx2) as http:
        yield anthropic.Anthropic(base_url=server, api_key="test-key", max_retries=0, http_client=http)


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"authorization": "Bearer test-key"}, timeout=30) as c:
        yield c
