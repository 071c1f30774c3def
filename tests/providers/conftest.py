"""Fixtures that run the fake upstreams on free ports, one server per session.

The repository root goes on ``sys.path`` so ``tests.fakes`` imports however
pytest is launched, and ``src`` too when Responsa is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
if importlib.util.find_spec("responsa") is None:
    sys.path.insert(0, str(_ROOT / "src"))

from responsa.config import ProviderConfig, Settings  # noqa: E402
from responsa.providers.base import Provider  # noqa: E402
from responsa.providers.registry import Registry  # noqa: E402
from tests.fakes.anthropic import FakeAnthropic  # noqa: E402
from tests.fakes.openai_chat import FakeChat  # noqa: E402
from tests.fakes.openai_responses import FakeResponses  # noqa: E402
from tests.helpers import serve_in_thread  # noqa: E402


@pytest.fixture(scope="session")
def chat_fake_server() -> Iterator[tuple[FakeChat, str]]:
    fake = FakeChat()
    with serve_in_thread(fake.app) as url:
        yield fake, f"{url}/v1"


@pytest.fixture(scope="session")
def responses_fake_server() -> Iterator[tuple[FakeResponses, str]]:
    fake = FakeResponses()
    with serve_in_thread(fake.app) as url:
        yield fake, f"{url}/v1"


@pytest.fixture(scope="session")
def anthropic_fake_server() -> Iterator[FakeAnthropic]:
    """Its ``url`` is the base URL without ``/v1``, as Anthropic's are given."""
    fake = FakeAnthropic()
    with serve_in_thread(fake.app) as url:
        fake.url = url
        yield fake


@pytest.fixture(scope="session")
def fake_providers(chat_fake_server: tuple[FakeChat, str], responses_fake_server: tuple[FakeResponses, str],
                   anthropic_fake_server: FakeAnthropic) -> dict[str, ProviderConfig]:
    """The three fake upstreams as the providers ``chat`` (Chat Completions),
    ``native`` (Responses) and ``claude`` (Anthropic), for a server's
    ``settings.providers.update(...)``: a key set (any), no retries."""
    return {name: ProviderConfig(name=name, kind=kind, base_url=url, api_key_env="PATH", options={"max_retries": 0})
            for name, kind, url in (("chat", "chat-completions", chat_fake_server[1]),
                                    ("native", "openai-responses", responses_fake_server[1]),
                                    ("claude", "anthropic", anthropic_fake_server.url))}


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
