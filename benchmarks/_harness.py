"""What every benchmark script here shares: free ports, starting and
stopping the processes under test (a fake upstream, ``responsa serve`` from
this checkout), waiting for them, the closed-loop load generator, percentiles,
and the per-process CPU time and RSS read from ``/proc``.

Scripts import it as ``from _harness import ...`` (``benchmarks/`` is on
``sys.path`` when a script here runs) or, from the repository root, as
``benchmarks._harness``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Tell me about the weather in Paris today please"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll ``url`` until it answers (any status) or ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f} s")


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(call: Callable[[], Awaitable[int]], n: int, concurrency: int,
                  seconds: float | None = None, errors: list[str] | None = None) -> tuple[list[float], int]:
    """``n`` calls by ``concurrency`` closed-loop workers: each latency in
    ms, and the sum of what the calls returned (events, bytes...). With
    ``seconds``, no call starts after that budget (at least one per worker
    runs): on a busy shared machine a fixed count can take ten times longer
    than on an idle one. With ``errors``, a call that raises is counted there
    (its latency is not) instead of ending the measurement."""
    latencies: list[float] = []
    events = 0
    queue = iter(range(n))
    deadline = time.perf_counter() + seconds if seconds else None

    async def worker() -> None:
        nonlocal events
        for i in queue:
            if deadline is not None and i >= concurrency and time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            try:
                sent = await call()
            except Exception as exc:
                if errors is None:
                    raise
                errors.append(repr(exc)[:300])
                continue
            latencies.append((time.perf_counter() - t0) * 1000)
            events += sent

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, events


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children: none here)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15 of stat(5))


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and every live descendant (a server that forks workers)."""
    return sum(cpu_seconds(p) for p in _tree(pid))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_rss_mb(pid: int) -> float:
    return sum(rss_mb(p) for p in _tree(pid))


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for p in pids:
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        pids += [int(c) for c in children]
    return pids


def checkout_env(root: Path = ROOT, **extra: str) -> dict[str, str]:
    """The environment that makes a child run ``root``'s code (its ``src/``),
    not whichever checkout the virtualenv installed."""
    return {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}", **extra}


def provider_config(path: Path, upstream_port: int, max_connections: int | None = None) -> Path:
    """A Responsa config with one Chat Completions provider ``fake`` at the
    fake upstream (``max_connections``: its upstream pool, default 512)."""
    pool = f"max_connections = {max_connections}\n" if max_connections else ""
    path.write_text(f'[providers.fake]\nkind = "chat-completions"\n'
                    f'base_url = "http://127.0.0.1:{upstream_port}/v1"\nmodels = ["fake-model"]\n{pool}')
    return path


def start_responsa(port: int, config: Path, database_url: str, *, root: Path = ROOT,
                   log: IO[bytes] | None = None, extra_args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "responsa.cli", "serve", "--port", str(port),
                             "--config", str(config), "--database-url", database_url, "--log-level", "warning",
                             *extra_args],
                            env=checkout_env(root), stdout=log or subprocess.DEVNULL, stderr=log)


def stop(*procs: subprocess.Popen[bytes] | None) -> None:
    for proc in procs:
        if proc is None or proc.poll() is not None:
            continue
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running(*procs: subprocess.Popen[bytes]) -> Iterator[None]:
    try:
        yield
    finally:
        stop(*procs)


def machine(root: Path = ROOT) -> dict[str, object]:
    """What the numbers were measured on: they mean little without it."""
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"commit": commit or None, "cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
            "python": sys.version.split()[0], "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
