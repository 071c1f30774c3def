"""Fan-out fixtures: the real local Redis (skipped, saying why, only when unreachable)."""

from __future__ import annotations

import pytest

from tests.store.backends import REDIS_URL, in_own_loop, redis_error


@pytest.fixture(scope="session")
def redis_url() -> str:
    error = in_own_loop(redis_error)
    if error is not None:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {error}")
    return REDIS_URL
