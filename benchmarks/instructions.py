"""CPU instructions Responsa spends per request, counted by valgrind's
callgrind on the server process alone (the fake upstream and the client
run natively, outside the count). Wall-clock numbers on a shared 2-core
machine move by ±30% with the neighbours' load; instruction counts move by
well under 1%, so this is the number to decide a change by.

    python benchmarks/instructions.py [--requests 200] [--mode plain stream nostore chat]

For each mode: warm up, zero the counters, send ``--requests`` requests one
at a time, dump, and report instructions per request (``Ir``) as JSON on
stdout; ``net_of_idle`` takes out what the idle server spends in the same
wall time (periodic tasks, ~50x more of them per request under valgrind).
``--top N`` also prints the N functions with the most inclusive
instructions (C level: the interpreter shows up as ``_PyEval_EvalFrameDefault``,
so use py-spy for Python-level attribution). Needs ``valgrind`` (Debian
package) on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from overhead import PROMPT, free_port, wait_up  # noqa: E402

MODES = {
    "plain": ("/v1/responses", {"model": "fake/fake-model", "input": PROMPT}),
    "stream": ("/v1/responses", {"model": "fake/fake-model", "input": PROMPT, "stream": True}),
    "nostore": ("/v1/responses", {"model": "fake/fake-model", "input": PROMPT, "store": False}),
    "nostore-stream": ("/v1/responses", {"model": "fake/fake-model", "input": PROMPT, "store": False,
                                         "stream": True}),
    "chat": ("/v1/chat/completions", {"model": "fake/fake-model",
                                      "messages": [{"role": "user", "content": PROMPT}]}),
}


def _send(http: httpx.Client, base: str, mode: str) -> None:
    path, body = MODES[mode]
    if body.get("stream"):
        with http.stream("POST", base + path, json=body) as r:
            assert r.status_code == 200, r.read()
            for _ in r.iter_bytes():
                pass
    else:
        r = http.post(base + path, json=body)
        assert r.status_code == 200, r.text


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def measure(args: argparse.Namespace) -> dict[str, object]:
    up_port, rs_port = free_port(), free_port()
    results: dict[str, object] = {"requests": args.requests, "modes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "responsa.toml"
        config.write_text(f'[providers.fake]\nkind = "chat-completions"\n'
                          f'base_url = "http://127.0.0.1:{up_port}/v1"\nmodels = ["fake-model"]\n')
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
        out = Path(tmp) / "callgrind.out"
        upstream = subprocess.Popen([sys.executable, str(ROOT / "tests/fakes/openai_chat.py"), "--port",
                                     str(up_port)], env=env, stderr=subprocess.DEVNULL)
        server = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                   f"--callgrind-out-file={out}.%p", sys.executable, "-m", "responsa.cli", "serve",
                                   "--port", str(rs_port), "--config", str(config),
                                   "--database-url", f"sqlite:///{tmp}/bench.db", "--log-level", "warning",
                                   *args.serve_args], env=env, stderr=subprocess.DEVNULL)
        try:
            wait_up(f"http://127.0.0.1:{up_port}/v1/models", upstream)
            deadline = time.monotonic() + 1200
            while True:  # start-up under valgrind takes a while
                try:
                    httpx.get(f"http://127.0.0.1:{rs_port}/health", timeout=5)
                    break
                except httpx.HTTPError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("responsa did not come up under valgrind") from None
                    time.sleep(0.5)
            base = f"http://127.0.0.1:{rs_port}"
            with httpx.Client(timeout=120) as http:
                for mode in args.mode:
                    for _ in range(args.warmup):
                        _send(http, base, mode)
                    _control("--instr=on", str(server.pid))
                    _control("--zero", str(server.pid))
                    began = time.monotonic()
                    for _ in range(args.requests):
                        _send(http, base, mode)
                    window = time.monotonic() - began
                    before = set(Path(tmp).glob("callgrind.out.*"))
                    _control("--dump", str(server.pid))
                    _control("--instr=off", str(server.pid))
                    dumps = sorted(set(Path(tmp).glob("callgrind.out.*")) - before or before,
                                   key=lambda p: p.stat().st_mtime)
                    total = _total(dumps[-1])
                    entry: dict[str, object] = {"instructions_per_request": round(total / args.requests),
                                                "window_s": round(window, 1)}
                    if args.top:
                        entry["top"] = _top(dumps[-1], args.top)
                    results["modes"][mode] = entry  # type: ignore[index]
                    for d in dumps:
                        if args.keep:
                            shutil.copy(d, Path(args.keep) / f"{mode}.{d.name}")
                        d.unlink()
                if args.idle:
                    # Periodic background work (sweeper, checkpoints, lease renewal) runs per second, and
                    # under valgrind a request takes ~50x longer: count it alone and take it out.
                    _control("--instr=on", str(server.pid))
                    _control("--zero", str(server.pid))
                    time.sleep(args.idle)
                    before = set(Path(tmp).glob("callgrind.out.*"))
                    _control("--dump", str(server.pid))
                    _control("--instr=off", str(server.pid))
                    (dump,) = set(Path(tmp).glob("callgrind.out.*")) - before
                    per_s = _total(dump) / args.idle
                    results["idle_instructions_per_s"] = round(per_s)
                    for entry in results["modes"].values():  # type: ignore[attr-defined]
                        entry["net_of_idle"] = round(entry["instructions_per_request"]
                                                     - per_s * entry["window_s"] / args.requests)
        finally:
            for proc in (server, upstream):
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return results


def _top(dump: Path, n: int) -> list[str]:
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(dump)], capture_output=True,
                          text=True, check=True).stdout
    rows = [line for line in text.splitlines() if re.match(r"^\s*[\d,]+ \(", line)]
    return rows[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--mode", nargs="+", default=["plain", "stream", "nostore"], choices=sorted(MODES))
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--idle", type=float, default=20.0,
                        help="seconds of idle server counted to take periodic work out (0: off)")
    parser.add_argument("--keep", help="copy the callgrind dumps to this directory")
    parser.add_argument("--serve-args", nargs=argparse.REMAINDER, default=[],
                        help="extra arguments for `responsa serve` (last)")
    print(json.dumps(measure(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
