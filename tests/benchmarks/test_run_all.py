"""The benchmark suite runs end to end (``benchmarks/run_all.py --quick``:
tiny counts, no llama-stack, SQLite only) and writes results that hold
every part: what BENCHMARKS.md's tables and plot are made from. The numbers
themselves are not asserted (wall time on a shared machine); that each part
measured what it says is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_quick_suite_measures_every_part(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/run_all.py"), "--quick", "--no-llama-stack",
                           "--postgres", "none", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())

    latency = results["latency"]
    assert {(r["mode"], r["store"], r["concurrency"]) for r in latency} == {
        (mode, store, c) for mode in ("non-streamed", "streamed") for store in (True, False) for c in (1, 16)}
    for r in latency:
        assert r["through"]["n"] > 0 and r["direct"]["n"] > 0 and r["through"]["errors"] == 0
        assert r["through"]["rps"] > 0 and r["through"]["server_cpu_us_per_request"] >= 0
        if r["mode"] == "streamed":  # every stream relayed the fake's words as text deltas
            assert r["through"]["events"] >= r["through"]["n"] * 10
            assert "added_first_text_p50_ms" in r
    # The kernel counts CPU in 10 ms ticks: one quick point on an idle box can read 0, not all of them.
    assert sum(r["through"]["server_cpu_us_per_request"] for r in latency) > 0

    (relay,) = results["relay"]
    assert relay["events_per_stream"] >= relay["deltas"]  # the 200 deltas, plus the lifecycle events
    assert relay["through_events_per_s"] > 0 and relay["server_cpu_us_per_event"] >= 0  # (ticks, as above)

    (held,) = results["open_streams"]
    assert held["streams_relaying"] == held["upstream_held"] == held["streams"] == 50
    assert held["rss_open_mb"] > 0 and held["error_count"] == 0

    depths = {r["depth"]: r for r in results["context"]}
    assert set(depths) == {1, 10}
    assert all(r["backend"] == "sqlite" and r["through"]["n"] > 0 for r in depths.values())

    assert "| responsa | non-streamed | on | 1 |" in done.stdout  # the Markdown tables
    png = out.with_suffix(".png")
    try:
        import matplotlib  # noqa: F401  (the optional bench extra)
    except ImportError:
        assert not png.exists()
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
