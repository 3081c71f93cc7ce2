#!/usr/bin/python3
"""The memcached series' plot and summary (bench/memcached/run-series; Debian's python3-matplotlib).

Reads DIR/memcached_<server>.run<K>.csv (skyloft-loadgen's columns, one file per run; or a single
DIR/memcached_<server>.csv) and DIR/memcached_memcaslap.csv. Every figure is taken from the per-rate median
of the runs (a rate a run did not reach counts as a miss there). Writes
  DIR/memcached_p99.png     p50 and p99 latency vs offered load, one line per server
  DIR/memcached_summary.md  each server's max load with p99 <= the SLO (the offered rate of the last point
                            before the first that misses it, as in plot_run_all.py), p50/p99 at 50% load, the
                            targets, memcaslap's figures, and the max load at ten times the SLO (the trend
                            on a loaded machine where nothing meets it)
"50% load" is half of the real memcached's max load under the SLO, taken at the sweep's nearest point.

usage: /usr/bin/python3 bench/memcached/plot_memcached.py --dir DIR [--slo-us 500] [--servers "skyloft linux memcached"]
                                                          [--note TEXT]
"""
import argparse
import csv
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plot_sweep  # noqa: E402  (bench/plot_sweep.py)


FIELDS = ("target_rps", "achieved_rps", "p50_us", "p99_us", "unanswered", "errors")


def read_runs(directory, server):
    """The per-rate median over the server's runs, and how many runs there were."""
    return plot_sweep.read_runs(directory, f"memcached_{server}", FIELDS)


def max_load_under_slo(points, slo_us):
    return plot_sweep.max_load(points, lambda r: r["p99_us"] <= slo_us and r["unanswered"] == 0 and r["errors"] == 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--slo-us", type=float, default=500)
    ap.add_argument("--servers", default="skyloft linux memcached")
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    data = {}
    nruns = {}
    for s in a.servers.split():
        curve, n = read_runs(a.dir, s)
        if curve is not None:
            data[s], nruns[s] = curve, n
    if not data:
        sys.exit(f"plot_memcached: no memcached_*.csv in {a.dir}")
    runs_text = ", ".join(f"{s} {n}" for s, n in nruns.items())
    loads = {s: max_load_under_slo(pts, a.slo_us) for s, pts in data.items()}
    real = loads.get("memcached", 0)
    half = real / 2
    lines = ["## memcached protocol: skyloft-memcached vs memcached", "",
             f"skyloft-loadgen --protocol memcached (90% get / 10% set, 32-byte values, 10k keys, 32 connections, "
             f"Poisson), SLO p99 <= {a.slo_us:g} us. {a.note}",
             f"Every latency below is the per-rate median over the runs (runs: {runs_text}); the servers took "
             f"turns within each round.", "",
             f"| server | max load under SLO (rps) | vs memcached | p50 at 50% load (us) | p99 at 50% load (us) "
             f"| max load with p99 <= {10 * a.slo_us / 1e3:g} ms (rps) |",
             "|---|---:|---:|---:|---:|---:|"]
    at_half = {}
    for s, pts in data.items():
        if half > 0:
            near = min(pts, key=lambda r: abs(r["target_rps"] - half))
            at_half[s] = near
        r = at_half.get(s)
        ratio = f"{loads[s] / real:.2f}x" if real > 0 else "n/a"
        lines.append(f"| {s} | {loads[s]:.0f} | {ratio} | {r['p50_us'] if r else float('nan'):.1f} | "
                     f"{r['p99_us'] if r else float('nan'):.1f} | {max_load_under_slo(pts, 10 * a.slo_us):.0f} |")
    if half > 0 and "memcached" in at_half:
        rate = at_half["memcached"]["target_rps"]
        lines += ["", f"50% load: {rate:.0f} rps (half of memcached's {real:.0f})."]
        for s in ("skyloft", "linux"):
            if s in at_half and s in loads:
                p99_ok = at_half[s]["p99_us"] <= at_half["memcached"]["p99_us"]
                load_ratio = loads[s] / real
                lines.append(f"- {s}: p99 at 50% load {at_half[s]['p99_us']:.1f} us vs memcached "
                             f"{at_half['memcached']['p99_us']:.1f} us (target <=: {'met' if p99_ok else 'NOT met'}); "
                             f"max load under SLO {load_ratio:.2f}x memcached's (target >= 0.9x: "
                             f"{'met' if load_ratio >= 0.9 else 'NOT met'})")
    elif "memcached" in data:
        lines += ["", "memcached met the SLO at no load point: the targets cannot be judged from this run."]
    caslap = os.path.join(a.dir, "memcached_memcaslap.csv")
    if os.path.exists(caslap):
        with open(caslap, newline="") as f:
            rows = list(csv.DictReader(f))
        if rows:
            lines += ["", "memcaslap (libmemcached-tools; closed loop, 1 thread, 16 connections): median "
                      "[min..max] over the runs of what it printed", "",
                      "| server | runs | TPS (ops/s) | avg latency (us) | max (us) |", "|---|---:|---:|---:|---:|"]

            def spread(values):
                return f"{statistics.median(values):.0f} [{min(values):.0f}..{max(values):.0f}]"
            for server in dict.fromkeys(r["server"] for r in rows):
                mine = [r for r in rows if r["server"] == server]
                col = lambda k: [float(r[k]) for r in mine]  # noqa: E731
                lines.append(f"| {server} | {len(mine)} | {spread(col('tps'))} | {spread(col('avg_us'))} | "
                             f"{spread(col('max_us'))} |")
    lines.append("")
    plot_sweep.write_summary(os.path.join(a.dir, "memcached_summary.md"), lines)
    plt = plot_sweep.pyplot("plot_memcached")
    if plt is None:
        return
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, q in zip(axes, ("p50_us", "p99_us")):
        for s, pts in data.items():
            shown = [r for r in pts if r[q] != float("inf")]  # rates the median run did not reach
            ax.plot([r["target_rps"] / 1e3 for r in shown], [max(r[q], 1) for r in shown], marker="o", markersize=3,
                    label=f"{s} (median of {nruns[s]})")
        if q == "p99_us":
            ax.axhline(a.slo_us, color="grey", linestyle="--", linewidth=1, label=f"SLO {a.slo_us:g} us")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (k requests/s)")
        ax.set_ylabel(f"{q[:3]} latency (us)")
        ax.set_title(f"memcached protocol, {q[:3]}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(a.dir, "memcached_p99.png")
    fig.savefig(out, dpi=120)
    print(f"plot_memcached: wrote {out}")


if __name__ == "__main__":
    main()
