"""Tables (Markdown) and the latency-vs-concurrency plot (PNG) from the JSON
that ``run_all.py`` writes; given several runs (before / after), one table
row per run and one line per run in the plot.

    python benchmarks/report.py RESULTS.json [MORE.json ...] [--plot out.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _name(run: dict[str, Any]) -> str:
    return run.get("label") or run["machine"].get("commit") or "run"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _lat(run: dict[str, Any], mode: str, store: bool, c: int) -> dict[str, Any] | None:
    return next((r for r in run["latency"] if r["target"] == "responsa" and r["mode"] == mode
                 and r["store"] == store and r["concurrency"] == c), None)


def _depth_ratio(run: dict[str, Any], backend: str) -> str:
    rows = {r["depth"]: r for r in run["context"] if r.get("target") == "responsa" and r["backend"] == backend
            and "skipped" not in r}
    if 1 not in rows or len(rows) < 2:
        return "-"
    deep = rows[max(rows)]
    base_cpu = rows[1]["through"]["server_cpu_us_per_request"]
    # /proc counts CPU in 10 ms ticks: a short (--quick) run can read 0 at depth 1.
    cpu = deep["through"]["server_cpu_us_per_request"] / base_cpu if base_cpu > 0 else float("nan")
    added = deep["added_p50_ms"] / rows[1]["added_p50_ms"] if rows[1]["added_p50_ms"] > 0 else float("nan")
    return f"{added:.1f}x added / {cpu:.1f}x CPU (depth {max(rows)})"


def targets(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Issue 16's targets, each with what this run measured: (target, goal, measured)."""
    out: list[tuple[str, str, str]] = []
    ns1 = _lat(run, "non-streamed", True, 1)
    if ns1:
        out.append(("non-streamed added latency, c=1, store on, SQLite", "p50 ≤ 0.5 ms (must ≤ 0.8), p99 ≤ 2 ms",
                    f"p50 {ns1['added_p50_ms']:+.2f} ms, p99 {ns1['added_p99_ms']:+.2f} ms "
                    f"({ns1['through']['server_cpu_us_per_request']:.0f} µs server CPU/request)"))
    for store, goal in ((True, "≥ 1,200 rps"), (False, "≥ 2,000 rps")):
        r = _lat(run, "non-streamed", store, 32)
        if r:
            out.append((f"throughput at c=32, store {'on' if store else 'off'}, one process", goal,
                        f"{r['through']['rps']:.0f} rps (direct fake: {r['direct']['rps']:.0f})"))
    st1 = _lat(run, "streamed", True, 1)
    if st1 and "added_first_text_p50_ms" in st1:
        out.append(("streamed: added time to first text, c=1", "≤ 0.5 ms", f"{st1['added_first_text_p50_ms']:+.2f} ms"))
    relay = next((r for r in run["relay"] if r["target"] == "responsa"), None)
    if relay:
        out.append(("streamed: server CPU per event", "≤ 10 µs", f"{relay['server_cpu_us_per_event']:.1f} µs"))
        out.append(("streamed: events/s relayed (2,000-delta answer)", "≥ 50,000",
                    f"{relay['through_events_per_s']:.0f} (the fake alone: {relay['direct_events_per_s']:.0f})"))
    held = next((r for r in run["open_streams"] if r["target"] == "responsa"), None)
    if held:
        out.append(("1,000 open streams", "≤ 400 MB RSS",
                    f"{held['rss_open_mb']:.0f} MB with {held['streams_relaying']} relaying"))
    for backend in ("sqlite", "postgres"):
        ratio = _depth_ratio(run, backend)
        if ratio != "-":
            out.append((f"context load, depth 1,000 vs 1, {backend}", "≤ 1.5x", ratio))
    return out


def markdown(*runs: dict[str, Any]) -> str:
    multi = len(runs) > 1
    out: list[str] = []
    head = "| run " if multi else ""
    sep = "|---" if multi else ""

    def cell(run: dict[str, Any]) -> str:
        return f"| {_name(run)} " if multi else ""

    def about(r: dict[str, Any]) -> str:
        end = f" -> {r['loadavg_1m_end']}" if r.get("loadavg_1m_end") is not None else ""
        took = f", {r['seconds']:.0f} s" if r.get("seconds") else ""
        flags = (" (quick)" if r.get("quick") else "") + (f" ({r['note']})" if r.get("note") else "")
        return (f"{_name(r)}: commit {r['machine']['commit']}, {r['machine']['time_utc']}, load average "
                f"{r['machine']['loadavg_1m']}{end}, {r['machine']['cpus']} CPUs{took}{flags}")

    out.append("Machine: " + "; ".join(about(r) for r in runs) + "\n")

    goals: dict[str, str] = {}
    measured: dict[str, list[str]] = {}
    for i, run in enumerate(runs):
        for name, goal, value in targets(run):
            goals.setdefault(name, goal)
            measured.setdefault(name, ["-"] * len(runs))[i] = value
    if goals:
        out.append("**Issue 16 targets** (this 2-core machine, ratios in one run):\n")
        out.append("| target | goal | " + " | ".join(_name(r) for r in runs) + " |")
        out.append("|---|---|" + "---|" * len(runs))
        out += [f"| {name} | {goal} | " + " | ".join(measured[name]) + " |" for name, goal in goals.items()]
        out.append("")

    out.append("**Added latency** (through minus direct, ms; direct = the same fake upstream called by the same "
               "client at the same concurrency just before):\n")
    out.append(f"{head}| server | request | store | conc | direct p50 / p99 | through p50 / p99 | "
               f"**added p50 / p99** | rps | server CPU/req |")
    out.append(f"{sep}|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["target"], r["mode"], r["store"], r["concurrency"]) for run in runs for r in run["latency"]},
                  key=lambda k: (k[0] != "responsa", k[0], not k[2], k[1], k[3]))
    for key in keys:
        for run in runs:
            for r in run["latency"]:
                if (r["target"], r["mode"], r["store"], r["concurrency"]) != key:
                    continue
                d, t = r["direct"], r["through"]
                first = (f" (first text {r['added_first_text_p50_ms']:+.2f})"
                         if "added_first_text_p50_ms" in r else "")
                out.append(f"{cell(run)}| {key[0]} | {key[1]} | {'on' if key[2] else 'off'} | {key[3]} | "
                           f"{_ms(d['p50_ms'])} / {_ms(d['p99_ms'])} | {_ms(t['p50_ms'])} / {_ms(t['p99_ms'])} | "
                           f"**{r['added_p50_ms']:+.2f} / {r['added_p99_ms']:+.2f}**{first} | {t['rps']:.0f} | "
                           f"{t['server_cpu_us_per_request']:.0f} µs |")

    out.append("\n**Throughput** (closed loop; max over the concurrencies measured):\n")
    out.append(f"{head}| server | request | store | max rps (at conc) | rps at c=32 | direct max rps |")
    out.append(f"{sep}|---|---|---|---|---|---|")
    for key in sorted({(r["target"], r["mode"], r["store"]) for run in runs for r in run["latency"]},
                      key=lambda k: (k[0] != "responsa", k[0], not k[2], k[1])):
        for run in runs:
            rows = [r for r in run["latency"] if (r["target"], r["mode"], r["store"]) == key]
            if not rows:
                continue
            best = max(rows, key=lambda r: r["through"]["rps"])
            at32 = next((r["through"]["rps"] for r in rows if r["concurrency"] == 32), None)
            direct = max(r["direct"]["rps"] for r in rows)
            out.append(f"{cell(run)}| {key[0]} | {key[1]} | {'on' if key[2] else 'off'} | "
                       f"{best['through']['rps']:.0f} (c={best['concurrency']}) | "
                       f"{'-' if at32 is None else f'{at32:.0f}'} | {direct:.0f} |")

    out.append("\n**Streaming** (one stream at a time; CPU is the server process's, from /proc):\n")
    out.append(f"{head}| server | deltas | events/s through | events/s direct | server CPU/event |")
    out.append(f"{sep}|---|---|---|---|---|")
    for run in runs:
        for r in run["relay"]:
            out.append(f"{cell(run)}| {r['target']} | {r['deltas']} | {r['through_events_per_s']:.0f} | "
                       f"{r['direct_events_per_s']:.0f} | {r['server_cpu_us_per_event']:.1f} µs |")
    out.append(f"\n{head}| server | streams held open | relaying | upstream held | RSS idle → open | per stream |")
    out.append(f"{sep}|---|---|---|---|---|---|")
    for run in runs:
        for r in run["open_streams"]:
            held = r.get("upstream_held", r.get("upstream_held_max"))  # (the first runs kept the maximum)
            out.append(f"{cell(run)}| {r['target']} | {r['streams']} | {r['streams_relaying']} | {held} | "
                       f"{r['rss_idle_mb']:.0f} → {r['rss_open_mb']:.0f} MB | "
                       f"{r['kb_per_stream']:.0f} kB |")

    out.append("\n**Context load** (continuing a `previous_response_id` chain, one request at a time; direct = "
               "the same history sent to the fake):\n")
    out.append(f"{head}| server / store | depth | direct p50 | through p50 | **added p50** | server CPU/req | "
               f"vs depth 1: added / CPU |")
    out.append(f"{sep}|---|---|---|---|---|---|---|")
    for run in runs:
        first: dict[str, tuple[float, float]] = {}
        for r in run["context"]:
            if "skipped" in r:
                out.append(f"{cell(run)}| {r['target']} / {r['backend']} | skipped: {r['skipped']} | | | | | |")
                continue
            where = f"{r['target']} / {r['backend']}"
            cpu = r["through"]["server_cpu_us_per_request"]
            base, base_cpu = first.setdefault(where, (r["added_p50_ms"], cpu))
            ratio = f"{r['added_p50_ms'] / base:.1f}x" if base > 0 else "-"
            ratio += f" / {cpu / base_cpu:.1f}x" if cpu and base_cpu else ""
            out.append(f"{cell(run)}| {where} | {r['depth']} | {_ms(r['direct']['p50_ms'])} | "
                       f"{_ms(r['through']['p50_ms'])} | **{r['added_p50_ms']:+.2f}** | "
                       f"{'-' if cpu is None else f'{cpu:.0f} µs'} | {ratio} |")
    if any(isinstance(r.get("llama_stack"), str) and not r["llama_stack"][:1].isdigit() for r in runs):
        out.append("\nllama-stack: " + "; ".join(f"{_name(r)}: {r['llama_stack']}" for r in runs))
    return "\n".join(out) + "\n"


def plot(runs: list[dict[str, Any]], png: Path) -> str | None:
    """Added p50 latency vs concurrency, one line per server, request kind
    and run (store on). ``None``, or why no plot was drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    styles = {"non-streamed": "-", "streamed": "--"}
    colors = {"responsa": ["#1f77b4", "#2ca02c", "#17becf"], "llama-stack": ["#d62728", "#ff7f0e", "#9467bd"]}
    for ax, quantity in zip(axes, ("p50", "p99"), strict=True):
        for i, run in enumerate(runs):
            for target in ("responsa", "llama-stack"):
                for mode in ("non-streamed", "streamed"):
                    rows = sorted((r for r in run["latency"] if r["target"] == target and r["mode"] == mode
                                   and r["store"]), key=lambda r: r["concurrency"])
                    if not rows:
                        continue
                    label = f"{target} {mode}" + (f" ({_name(run)})" if len(runs) > 1 else "")
                    ys = [max(r[f"added_{quantity}_ms"], 0.01) for r in rows]
                    ax.plot([r["concurrency"] for r in rows], ys, styles[mode], marker="o",
                            color=colors[target][i % 3], label=label)
        ax.set_xscale("log", base=2)
        concs = sorted({r["concurrency"] for run in runs for r in run["latency"]})
        ax.set_xticks(concs, [str(c) for c in concs])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel("concurrent clients")
        ax.set_title(f"added latency {quantity} (through - direct), store on")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms (log scale)")
    axes[1].legend(fontsize=8)
    load = ", ".join(f"{_name(r)}: load {r['machine']['loadavg_1m']}" for r in runs)
    fig.suptitle(f"Responsa vs llama-stack in front of the same fake upstream (2-core machine; {load})", fontsize=10)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    runs = [json.loads(p.read_text()) for p in args.results]
    print(markdown(*runs))
    if args.plot:
        why = plot(runs, args.plot)
        if why:
            print(why, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
