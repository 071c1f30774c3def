"""Drive the Vercel AI SDK (``ai`` + ``@ai-sdk/openai`` from npm) against Responsa.

``install()`` puts pinned versions of the SDK into a cache directory with
``npm`` once (a few MB) and skips the calling test, saying why, only when npm
or its registry is unreachable (``tests/agents/npm.py``, as for Codex).
``run()`` runs ``ai_sdk.mjs`` (next to this file) with node against a
Responsa base URL and returns the JSON it prints: one result per scenario.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.agents import npm

PACKAGES = {"ai": "7.0.173", "@ai-sdk/openai": "4.0.118", "zod": "4.6.7"}
"""Pinned: the SDK changes what it sends (and what it requires back) between releases."""
SCRIPT = Path(__file__).with_name("ai_sdk.mjs")
_DEAD_PROXY = "http://127.0.0.1:9"
"""The discard port: nothing listens, so any non-loopback request fails fast."""
Json = dict[str, Any]


def install() -> Path:
    """The ``node_modules`` holding the pinned SDK, installed from npm on first use."""
    prefix = npm.cache_dir("ai-sdk", "-".join(PACKAGES.values()))
    modules = prefix / "node_modules"
    if all((modules / name / "package.json").exists() for name in PACKAGES):
        return modules
    if shutil.which("node") is None:
        pytest.skip("node is not installed, so the AI SDK cannot run")
    npm.install(prefix, [f"{name}@{version}" for name, version in PACKAGES.items()], "the AI SDK")
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
