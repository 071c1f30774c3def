"""Real server processes for the hardening tests: started with the CLI,
killed with real signals, their logs kept for inspection."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests import helpers
from tests.helpers import free_port


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    helpers.wait_healthy(f"{url}/health", proc, timeout, log)


def start(log: Path, *args: str, env: dict[str, str] | None = None,
          port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``responsa serve`` on a free loopback port, output to ``log``."""
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONSA_")}
    full_env["RESPONSA_LOCAL_THREADS"] = "1"
    full_env.update(env or {})
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "responsa.cli", "serve", "--host", "127.0.0.1",
                                 "--port", str(port), "--model", "test/echo", *args],
                                stdout=out, stderr=subprocess.STDOUT, env=full_env)
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def server(log: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, url = start(log, *args, env=env)
    try:
        wait_healthy(proc, url, log)
        yield proc, url
    finally:
        stop(proc)
