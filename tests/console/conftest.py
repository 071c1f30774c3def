"""A real server with two API keys (two tenants) and the console on, and a
real headless Chromium (Debian's ``chromium``, driven by Playwright; no
browser is ever downloaded)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from responsa.api.app import create_app
from responsa.config import load_settings
from tests.helpers import serve_in_thread
from tests.tools.support import TOKEN, make_server, require_bearer

KEY_A = "console-key-alpha-7f3c"
KEY_B = "console-key-bravo-91d2"
CHROMIUM = os.environ.get("RESPONSA_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def console_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("console")) / "console.db"


@pytest.fixture(scope="module")
def console_server(console_db: Path) -> Iterator[str]:
    settings = load_settings(None, database_url=f"sqlite:///{console_db}", default_model="test/echo",
                             api_keys=[KEY_A, KEY_B], mcp_allow_private=["127.0.0.1", "localhost"])
    with serve_in_thread(create_app(settings), lifespan="on") as url:
        yield url


@pytest.fixture(scope="module")
def mcp_vault() -> Iterator[str]:
    """A real MCP server (streamable HTTP) that wants ``Bearer TOKEN``."""
    with serve_in_thread(require_bearer(make_server("vault").streamable_http_app(), TOKEN), lifespan="on") as url:
        yield f"{url}/mcp"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A launched browser. Outside CI a machine without the system Chromium
    skips, saying why; in CI (``.ci/run`` installs it) that is a failure."""
    if not shutil.which(CHROMIUM):
        message = f"no system Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright import sync_api
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()
