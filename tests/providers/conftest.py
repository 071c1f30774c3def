"""Fixtures that run the fake upstreams on free ports, one server per session.

The repository root goes on ``sys.path`` so ``tests.fakes`` imports however
pytest is launched, and ``src`` too when Responsa is not installed.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
if importlib.util.find_spec("responsa") is None:
    sys.path.insert(0, str(_ROOT / "src"))

from responsa.config import ProviderConfig, Settings  # noqa: E402
from responsa.providers.base import Provider  # noqa: E402
from responsa.providers.registry import Registry  # noqa: E402
from tests.fakes.openai_chat import FakeChat  # noqa: E402
from tests.fakes.openai_responses import FakeResponses  # noqa: E402


def serve_in_thread(app: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


@pytest.fixture(scope="session")
def chat_fake_server() -> Iterator[tuple[FakeChat, str]]:
    fake = FakeChat()
    for url in serve_in_thread(fake.app):
        yield fake, url


@pytest.fixture(scope="session")
def responses_fake_server() -> Iterator[tuple[FakeResponses, str]]:
    fake = FakeResponses()
    for url in serve_in_thread(fake.app):
        yield fake, url


@pytest.fixture
def chat_fake(chat_fake_server: tuple[FakeChat, str]) -> FakeChat:
    chat_fake_server[0].reset()
    return chat_fake_server[0]


@pytest.fixture
def responses_fake(responses_fake_server: tuple[FakeResponses, str]) -> FakeResponses:
    responses_fake_server[0].reset()
    return responses_fake_server[0]


@pytest.fixture
async def make_provider() -> AsyncIterator[Callable[..., Provider]]:
    """Builds providers through the registry, so the ``@register`` wiring is
    tested too, and closes them after the test."""
    made: list[Provider] = []

    def make(kind: str, base_url: str | None, **options: Any) -> Provider:
        cfg = ProviderConfig(name="up", kind=kind, base_url=base_url, models=["configured-model"],
                             options={"retry_backoff": 0.01, **options})
        made.append(Registry(Settings(providers={"up": cfg})).get("up"))
        return made[-1]

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def chat(chat_fake_server: tuple[FakeChat, str], make_provider: Callable[..., Provider]) -> Provider:
    return make_provider("chat-completions", chat_fake_server[1])


@pytest.fixture
def responses(responses_fake_server: tuple[FakeResponses, str],
              make_provider: Callable[..., Provider]) -> Provider:
    return make_provider("openai-responses", responses_fake_server[1])
