"""``responsa serve --workers N``: N server processes on one port, for
machines with more cores than one Python process can use.

The parent forks N workers and does nothing else: each worker binds its
own listening socket with ``SO_REUSEPORT`` (the kernel spreads new
connections over the sockets of the group) and runs the whole app, with
its own event loop, store connection and background runner. Nothing is
shared in memory, so everything that must be seen by every worker already
goes through what replicas share (issue 16, scope 5):

- the database: responses, background jobs and their events, the leases
  that say which worker runs a job (each worker is its own lease owner, its
  sweeper takes over the jobs of a worker that died), and the secret that
  signs compaction items (one per database). SQLite in WAL mode takes
  several processes; each waits for the write lock (``busy_timeout``);
- Redis (required when N > 1): the live tail of background streams and
  cancels from one worker to the worker running the job, and the per-key
  limits (in memory they would be counted per worker: N times the limit).

A worker that exits unexpectedly (killed, crashed) is started again; one
that could not start (``STARTUP_FAILED``: an unreachable database...)
stops the server instead of looping, as would a single process. SIGTERM / SIGINT to the parent are passed to every
worker, which finish their requests (``shutdown_timeout_s``) and exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

log = logging.getLogger("responsa")

STARTUP_FAILED = 3
"""A worker's exit code when its app did not start (uvicorn's own)."""
RESTART_PAUSE_S = 1.0
"""The least time between two starts of a worker slot (no hot loop)."""


class WorkersRefused(SystemExit):
    pass


def check(workers: int, redis_url: str | None) -> None:
    """Refuse what N workers cannot do right, with what would work."""
    if workers < 1:
        raise WorkersRefused(f"responsa: --workers must be at least 1, not {workers}.")
    if workers > 1 and not redis_url:
        raise WorkersRefused(
            "responsa: --workers > 1 needs redis_url (RESPONSA_REDIS_URL): the workers share live background "
            "streams, cancels and per-key limits through Redis. Without it, run one worker per port "
            "behind a load balancer, or --workers 1.")
    if workers > 1 and not hasattr(socket, "SO_REUSEPORT"):
        raise WorkersRefused("responsa: --workers > 1 needs SO_REUSEPORT (Linux, macOS, BSD).")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` in the ``SO_REUSEPORT`` group."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: the stdlib loop (``--loop asyncio``, or no uvloop)
    # sets TCP_NODELAY only on sockets whose ``proto`` says TCP; without it a
    # small response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    sock.set_inheritable(True)
    return sock


def _worker(config: Any, host: str, port: int) -> int:
    """The body of a forked worker: uvicorn on its own socket of the group."""
    import uvicorn

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)  # uvicorn installs its own
    sock = listening_socket(host, port)
    sock.listen(2048)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else STARTUP_FAILED


def run(config: Any, workers: int, host: str, port: int) -> None:
    """Fork ``workers`` processes serving ``config`` (a ``uvicorn.Config``)
    on ``host:port`` and supervise them until SIGTERM / SIGINT."""
    # A busy port fails here, once, with uvicorn's wording, not in N workers.
    listening_socket(host, port).close()
    stopping = False
    started: dict[int, float] = {}

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def spawn() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _worker(config, host, port)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        started[pid] = time.monotonic()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        spawn()
    log.info("%d workers on port %d (SO_REUSEPORT): pids %s", workers, port, ", ".join(map(str, started)))
    failed = False
    while started:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        since = started.pop(pid, None)
        if since is None or stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        if code == STARTUP_FAILED:
            log.error("worker %d could not start: stopping the server", pid)
            failed = True
            stop(signal.SIGTERM, None)
            continue
        log.warning("worker %d exited (%s): starting another", pid,
                    f"signal {-code}" if code < 0 else f"code {code}")
        time.sleep(max(0.0, since + RESTART_PAUSE_S - time.monotonic()))
        spawn()
    if failed:
        raise SystemExit(1)
