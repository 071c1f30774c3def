"""The benchmark suite of issue 16 in one command, every number a
difference or ratio against a direct call to the same fake upstream in the
same run:

    python benchmarks/run_all.py [--quick] [--out benchmarks/results/latest.json] [--no-llama-stack]

1. added latency p50/p99 (non-streamed; streamed to the last byte and to the
   first event) at concurrency 1, 16, 32, 64, 256, requests/s and the
   server's CPU per request, ``store`` on and off, for Responsa and for
   llama-stack (``llama_stack.py``: its own Python 3.12 venv, the same fake);
2. streaming: events/s relayed for a 2,000-delta answer, server CPU per
   event, RSS with 1,000 streams held open;
3. continuing a ``previous_response_id`` chain 1 / 100 / 1,000 deep on
   SQLite and PostgreSQL (``context_depth.py``).

Writes one JSON file (``--out``), prints the tables BENCHMARKS.md shows
(``report.py``) and renders the latency-vs-concurrency plot (PNG, needs
matplotlib: ``pip install -e '.[bench]'``). ``--quick`` runs every part on
tiny counts (a smoke test, ~1 min). Each measurement point stops at its
request count or its time budget (``--seconds``, default 5), whichever comes
first, so the full run takes ~10 min on 2 cores however busy they are.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, checkout_env, free_port, machine, provider_config, running, start_responsa, wait_up

sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import context_depth
import llama_stack
import load
import report

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {"concurrency": [1, 16], "llama_concurrency": [1, 16], "requests": {1: 30, 16: 64},
                "llama_requests": {1: 10, 16: 32},
                "seconds": 2.0, "deltas": 200, "relay_streams": 3, "open_streams": 50, "depths": [1, 10],
                "llama_depths": [1, 5], "depth_requests": 5}
    conc = [1, 16, 32, 64, 256]
    # llama-stack stops at 64: there it already runs out of its SQL connection pool (5 + 10; "QueuePool limit
    # ... reached" in its log, 30 s waits) and one round at 256 (every client's first request) takes minutes.
    return {"concurrency": conc, "llama_concurrency": conc[:4],
            "requests": {1: 400, 16: 1600, 32: 1600, 64: 1600, 256: 2048},
            "llama_requests": {1: 100, 16: 160, 32: 192, 64: 256, 256: 512},
            "seconds": 5.0, "deltas": 2000, "relay_streams": 20, "open_streams": 1000, "depths": [1, 100, 1000],
            "llama_depths": [1, 100], "depth_requests": 100}


async def postgres_url(base: str) -> tuple[str | None, str | None]:
    """A fresh schema on ``base`` (dropped by ``drop_schema``), or why not."""
    from tests.store.backends import admin, new_schema_name, with_search_path

    name = new_schema_name()
    try:
        await admin(base, f'CREATE SCHEMA "{name}"')
    except Exception as exc:
        return None, f"{base}: {exc!r}"
    return with_search_path(base, name), name


async def drop_schema(base: str, name: str) -> None:
    from tests.store.backends import admin

    await admin(base, f'DROP SCHEMA "{name}" CASCADE')


CHECKOUT = ROOT  # whose Responsa is measured (--checkout)


def serve_responsa(tmp: Path, up_port: int, database_url: str, name: str) -> tuple[Any, load.Target]:
    port = free_port()
    # 1,000 open streams need 1,000 upstream connections: the default pool (512) would queue the rest.
    config = provider_config(tmp / "responsa.toml", up_port, max_connections=2048)
    log_file = (tmp / f"{name}-{port}.log").open("wb")
    proc = start_responsa(port, config, database_url, root=CHECKOUT, log=log_file)
    wait_up(f"http://127.0.0.1:{port}/health", proc, timeout=60)
    return proc, load.Target(name, f"http://127.0.0.1:{port}", "fake/fake-model", proc.pid,
                             {"authorization": f"Bearer {context_depth.KEY}"})


async def suite(args: argparse.Namespace, tmp: Path, upstream: str, up_port: int, up_pid: int,
                llama: load.Target | None, p: dict[str, Any], results: dict[str, Any],
                save: Callable[[], None]) -> None:
    """Every part, in order; ``results`` is saved after each (a run cut
    short keeps what it measured)."""
    sqlite_url = f"sqlite:///{tmp}/bench.db"
    log(f"seeding previous_response_id chains {p['depths']} deep (SQLite)")
    tips = {d: await context_depth.seed_chain(sqlite_url, d) for d in p["depths"]}
    proc, responsa = serve_responsa(tmp, up_port, sqlite_url, "responsa")
    targets = [responsa] + ([llama] if llama else [])
    with running(proc):
        async with load.session() as http:
            for t in targets:
                log(f"latency sweep: {t.name}")
                requests = p["requests"] if t is responsa else p["llama_requests"]
                results["latency"] += await load.latency_sweep(
                    http, upstream, up_pid, t, p["concurrency" if t is responsa else "llama_concurrency"], requests,
                    p["seconds"],
                    store_modes=(True, False) if t is responsa else (True,), log=log)
                save()
            for t in targets:
                log(f"stream relay ({p['deltas']} deltas): {t.name}")
                row = await load.stream_relay(http, upstream, up_pid, t, p["deltas"], p["relay_streams"], p["seconds"])
                log(f"  {row['through_events_per_s']:.0f} events/s through ({row['direct_events_per_s']:.0f} direct),"
                    f" {row['server_cpu_us_per_event']} us CPU/event")
                results["relay"].append(row)
                save()
        for t in targets:
            log(f"{p['open_streams']} open streams: {t.name}")
            row = await load.open_streams(upstream, t, p["open_streams"])
            log(f"  {row['streams_relaying']} relaying, RSS {row['rss_idle_mb']} -> {row['rss_open_mb']} MB"
                f" ({row['kb_per_stream']} kB/stream), errors {row['error_count']}")
            results["open_streams"].append(row)
            save()
        results["context"] = await context_rows(upstream, up_pid, responsa, tips, "sqlite", p)
        save()
    if args.postgres != "none":
        results["context"] += await postgres_context(args.postgres, tmp, upstream, up_port, up_pid, p)
        save()
    if llama is not None:
        log(f"context depth {p['llama_depths']} on llama-stack (chains built through its API)")
        async with load.session(16) as http:
            llama_tips = {d: await context_depth.build_via_api(http, llama, d) for d in p["llama_depths"]}
        results["context"] += await context_rows(upstream, up_pid, llama, llama_tips, "sqlite", p)


async def context_rows(upstream: str, up_pid: int, target: load.Target, tips: dict[int, str], backend: str,
                       p: dict[str, Any]) -> list[dict[str, Any]]:
    async with load.session(16) as http:
        rows = await context_depth.continue_chain(http, upstream, up_pid, target, tips, p["depth_requests"], backend,
                                                  p["seconds"])
    for r in rows:
        log(f"  {target.name} / {backend} depth {r['depth']:>5}: through p50 {r['through']['p50_ms']:.2f} ms, "
            f"added {r['added_p50_ms']:+.2f} ms, cpu {r['through']['server_cpu_us_per_request']} us")
    return rows


async def postgres_context(base: str, tmp: Path, upstream: str, up_port: int, up_pid: int,
                           p: dict[str, Any]) -> list[dict[str, Any]]:
    url, schema = await postgres_url(base)
    if url is None:
        log(f"PostgreSQL skipped: {schema}")
        return [{"target": "responsa", "backend": "postgres", "skipped": schema}]
    assert schema is not None
    try:
        log(f"seeding previous_response_id chains {p['depths']} deep (PostgreSQL)")
        tips = {d: await context_depth.seed_chain(url, d) for d in p["depths"]}
        proc, target = serve_responsa(tmp, up_port, url, "responsa")
        with running(proc):
            return await context_rows(upstream, up_pid, target, tips, "postgres", p)
    finally:
        await drop_schema(base, schema)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny counts: proves every part runs (~1 min)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/latest.json")
    parser.add_argument("--plot", type=Path, help="PNG path (default: --out with .png)")
    parser.add_argument("--label", default="", help="a name for this run, kept in the JSON (e.g. before/after)")
    parser.add_argument("--no-llama-stack", dest="llama_stack", action="store_false",
                        help="skip the llama-stack comparison (it needs Python 3.12 and a one-time install)")
    parser.add_argument("--checkout", type=Path, help="measure the Responsa of this checkout (e.g. a worktree of "
                        "an older commit, for a before/after pair in one quiet window); default: this one")
    parser.add_argument("--seconds", type=float, help="time budget per measurement point (default 5, quick 2)")
    parser.add_argument("--postgres", default=PG_DEFAULT, help="base URL for the PostgreSQL context runs, or 'none'")
    args = parser.parse_args()
    # SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C: the servers started here are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = plan(args.quick)
    global CHECKOUT
    if args.checkout:
        CHECKOUT = args.checkout.resolve()
        sys.path.insert(0, str(CHECKOUT / "src"))  # the chains are seeded with that checkout's store code
    if args.seconds:
        p["seconds"] = args.seconds
    started = time.monotonic()
    info = machine(CHECKOUT)
    log(f"machine: {info}")
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    results: dict[str, Any] = {"label": args.label, "quick": args.quick, "machine": info, "partial": True,
                               "plan": {k: v for k, v in p.items() if not isinstance(v, dict)},
                               "latency": [], "relay": [], "open_streams": [], "context": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        args.out.write_text(json.dumps(results, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="responsa-bench-") as tmp_name:
        tmp = Path(tmp_name)
        fake = subprocess.Popen([sys.executable, str(ROOT / "benchmarks/_fake_upstream.py"), "--port", str(up_port)],
                                env=checkout_env(), stderr=(tmp / "fake.log").open("wb"))
        with running(fake):
            wait_up(f"{upstream}/v1/models", fake)
            llama_proc, llama = None, None
            if args.llama_stack:
                log("llama-stack: preparing its venv and server")
                llama_proc, llama, why = llama_stack.start(tmp, up_port, log)
                results["llama_stack"] = llama_stack.VERSION if llama else why
                if llama is None:
                    log(f"llama-stack skipped: {why}")
            else:
                results["llama_stack"] = "not run (--no-llama-stack)"
            with running(*([llama_proc] if llama_proc else [])):
                asyncio.run(suite(args, tmp, upstream, up_port, fake.pid, llama, p, results, save))
    results.update(partial=False, loadavg_1m_end=round(os.getloadavg()[0], 2),
                   seconds=round(time.monotonic() - started, 1))
    save()
    log(f"wrote {args.out}")
    print(report.markdown(results))
    png = args.plot or args.out.with_suffix(".png")
    why = report.plot([results], png)
    log(f"plot: {png}" if why is None else f"no plot: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
