"""The fake upstreams of tests/providers, for agent clients driven end to end."""

from tests.providers.conftest import chat_fake_server, responses_fake_server  # noqa: F401
