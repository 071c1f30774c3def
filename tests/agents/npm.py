"""Pinned npm packages for the client tests (Codex CLI, the AI SDK),
installed once into a cache directory. A test skips, saying why, only when
npm or its registry is unreachable; any other npm failure fails it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

_NETWORK_ERRORS = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|"
                             r"getaddrinfo|socket hang up|proxy", re.IGNORECASE)


def cache_dir(*parts: str) -> Path:
    root = os.environ.get("RESPONSA_TEST_CACHE") or os.path.join(Path.home(), ".cache", "responsa-tests")
    return Path(root).joinpath(*parts)


def install(prefix: Path, specs: list[str], what: str) -> None:
    """``npm install specs`` into ``prefix`` (``what`` names them in a skip or failure)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed, so {what} cannot be installed from the npm registry")
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                               "--loglevel", "error", *specs],
                              capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"the npm registry did not answer within 15 minutes: cannot install {what}")
    if proc.returncode != 0:
        if _NETWORK_ERRORS.search(proc.stderr):
            pytest.skip(f"the npm registry is unreachable, so {what} cannot be installed: "
                        f"{proc.stderr.strip()[-300:]}")
        pytest.fail(f"npm install {' '.join(specs)} failed:\n{proc.stderr[-2000:]}")
