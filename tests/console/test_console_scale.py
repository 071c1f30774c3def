"""The console's list with 10,000 stored responses: every page by cursor,
and each page about as fast as the first (``benchmarks/console_list.py``
prints the full table, on PostgreSQL too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.console_list import KEY, measure, seed
from responsa.api.app import create_app
from responsa.config import load_settings
from tests.helpers import serve_in_thread
from tests.store.backends import in_own_loop

pytestmark = pytest.mark.slow
ROWS = 10_000


def test_ten_thousand_responses_page_by_cursor_and_stay_fast(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scale.db'}"
    in_own_loop(lambda: seed(url, ROWS, (KEY,)))
    settings = load_settings(None, database_url=url, default_model="test/echo")
    with serve_in_thread(create_app(settings), lifespan="on") as base:
        stats = measure(base, ROWS, repeat=10)  # asserts the walk saw every row exactly once
    for label, s in stats.items():
        print(f"{label:32s} median {s['median']:7.2f} ms  p95 {s['p95']:7.2f} ms")
    # Generous bounds for a shared 2-core CI box; typical medians are 1-20 ms.
    assert stats["first page (20)"]["median"] < 100
    assert stats["last page by cursor (20)"]["median"] < 100
    assert stats["cursor walk, every page (100)"]["median"] < 150
    assert all(s["median"] < 300 for s in stats.values())

