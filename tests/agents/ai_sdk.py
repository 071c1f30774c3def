"""Drive the Vercel AI SDK (``ai`` + ``@ai-sdk/openai`` from npm) against Responsa.

``install()`` puts pinned versions of the SDK into a cache directory with
``npm`` once (a few MB) and skips the calling test, saying why, only when npm
or its registry is unreachable, exactly as ``tests/agents/codex.py`` installs
Codex. ``run()`` runs ``ai_sdk.mjs`` (next to this file) with node against a
Responsa base URL and returns the JSON it prints: one result per scenario.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

PACKAGES = {"ai": "7.0.173", "@ai-sdk/openai": "4.0.118", "zod": "4.6.7"}
"""Pinned: the SDK changes what it sends (and what it requires back) between releases."""
SCRIPT = Path(__file__).with_name("ai_sdk.mjs")
_NETWORK_ERRORS = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|"
                             r"getaddrinfo|socket hang up|proxy", re.IGNORECASE)
_DEAD_PROXY = "http://127.0.0.1:9"
"""The discard port: nothing listens, so any non-loopback request fails fast."""
Json = dict[str, Any]


def cache_dir() -> Path:
    root = os.environ.get("RESPONSA_TEST_CACHE") or os.path.join(Path.home(), ".cache", "responsa-tests")
    return Path(root) / "ai-sdk" / "-".join(PACKAGES.values())


def install() -> Path:
    """The ``node_modules`` holding the pinned SDK, installed from npm on first use."""
    prefix = cache_dir()
    modules = prefix / "node_modules"
    if all((modules / name / "package.json").exists() for name in PACKAGES):
        return modules
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("node/npm are not installed, so the AI SDK cannot be installed from the npm registry")
    prefix.mkdir(parents=True, exist_ok=True)
    specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
    try:
        proc = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                               "--loglevel", "error", *specs],
                              capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("the npm registry did not answer within 15 minutes: cannot install the AI SDK")
    if proc.returncode != 0:
        if _NETWORK_ERRORS.search(proc.stderr):
            pytest.skip(f"the npm registry is unreachable, so the AI SDK cannot be installed: "
                        f"{proc.stderr.strip()[-300:]}")
        pytest.fail(f"npm install {' '.join(specs)} failed:\n{proc.stderr[-2000:]}")
    missing = [name for name in PACKAGES if not (modules / name / "package.json").exists()]
    assert not missing, f"npm installed no {missing} under {prefix}"
    return modules


def run(modules: Path, base_url: str, timeout: float = 60) -> Json:
    """Every scenario of ``ai_sdk.mjs`` against ``base_url`` (``.../v1``)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME")}
    env = {**keep, "HTTP_PROXY": _DEAD_PROXY, "HTTPS_PROXY": _DEAD_PROXY, "http_proxy": _DEAD_PROXY,
           "https_proxy": _DEAD_PROXY, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    proc = subprocess.run(["node", str(SCRIPT), str(modules), base_url], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, f"node exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    result: Json = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
