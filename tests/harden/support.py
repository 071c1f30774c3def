"""Real server processes for the hardening tests: started with the CLI,
killed with real signals, their logs kept for inspection."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not become healthy:\n{log.read_text()}")


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
