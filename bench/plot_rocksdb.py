#!/usr/bin/python3
"""bench/run-rocksdb's plot and summary (Debian's /usr/bin/python3 and python3-matplotlib).

Reads DIR/rocksdb_<setup>_<config>.csv (skyloft-loadgen's columns; setup: inprocess, tcp) and writes
  DIR/rocksdb_slowdown.png  p99.9 slowdown vs offered load, one line per configuration, one panel per setup
  DIR/rocksdb_summary.md    every configuration's maximum load with p99.9 slowdown <= the SLO (50) and its
                            ratio to fifo-none; the best preemptive one against the target (>= 1.5x)
The maximum load under the SLO is the highest offered rate up to the first point that misses it (p99.9
slowdown above the SLO, or a request left unanswered), as in plot_run_all.py. A last column gives the same
at ten times the SLO, for the trend where nothing meets it (a shared 2-core machine).

usage: /usr/bin/python3 bench/plot_rocksdb.py --dir DIR [--slo 50] [--configs "linux fifo-none ..."] [--note TEXT]
"""
import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_sweep  # noqa: E402  (bench/plot_sweep.py)

SETUPS = [("inprocess", "in-process generator"), ("tcp", "loopback TCP, skyloft-loadgen")]
BASELINE = "fifo-none"


def max_load_under_slo(points, slo, metric="slow_p999"):
    return plot_sweep.max_load(points, lambda r: r[metric] <= slo and r["unanswered"] == 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--slo", type=float, default=50)
    ap.add_argument("--configs", default="linux linux-tuned fifo-none fifo-5us fifo-10us fifo-20us")
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    configs = a.configs.split()
    data, _ = plot_sweep.read_series(a.dir, "rocksdb_{setup}_{config}", SETUPS, configs,
                                  ("target_rps", "achieved_rps", "slow_p99", "slow_p999", "unanswered"))
    if not data:
        sys.exit(f"plot_rocksdb: no rocksdb_*.csv in {a.dir}")
    setups = [s for s in SETUPS if any((s[0], c) in data for c in configs)]

    lines = ["# RocksDB series", "",
             f"skyloft-rocksdb, 50% GET / 50% SCAN, Poisson, SLO p99.9 slowdown <= {a.slo:g}. {a.note}", ""]
    for setup, title in setups:
        lines += [f"## RocksDB, {title}", "",
                  f"| configuration | max load with p99.9 slowdown <= {a.slo:g} (rps) | vs {BASELINE} | "
                  f"p99.9 slowdown at that load | max load with p99.9 slowdown <= {10 * a.slo:g} (rps) | "
                  f"max load with p99 slowdown <= {a.slo:g} (rps) | vs {BASELINE} |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        loads = {c: max_load_under_slo(data[(setup, c)], a.slo) for c in configs if (setup, c) in data}
        base_points = data.get((setup, BASELINE), [])
        ratio = lambda x: plot_sweep.load_ratio(x, loads.get(BASELINE, 0), base_points)
        p99_loads = {c: max_load_under_slo(data[(setup, c)], a.slo, "slow_p99") for c in loads}
        ratio99 = lambda x: plot_sweep.load_ratio(x, p99_loads.get(BASELINE, 0), base_points)
        for c, load in loads.items():
            at = [r["slow_p999"] for r in data[(setup, c)] if r["target_rps"] == load]
            relaxed = max_load_under_slo(data[(setup, c)], 10 * a.slo)
            lines.append(f"| {c} | {load:.0f} | {ratio(load)[1]} | {at[0] if at else float('nan'):.1f} | {relaxed:.0f} | "
                         f"{p99_loads[c]:.0f} | {ratio99(p99_loads[c])[1]} |")
        preemptive = {c: v for c, v in loads.items() if c.startswith("fifo-") and c != BASELINE}
        if preemptive and BASELINE in loads:
            best = max(preemptive, key=preemptive.get)
            r, text = ratio(preemptive[best])
            lines += ["", f"Best preemptive configuration: **{best}** ({preemptive[best]:.0f} rps), {text} {BASELINE} "
                      f"({loads[BASELINE]:.0f} rps; target >= 1.5x: {plot_sweep.verdict(r, 1.5)})."]
            best99 = max(preemptive, key=lambda c: p99_loads[c])
            r99, text99 = ratio99(p99_loads[best99])
            lines += ["", f"At p99 instead (not the target's percentile): **{best99}** {p99_loads[best99]:.0f} rps with p99 "
                      f"slowdown <= {a.slo:g}, {text99} {BASELINE} ({p99_loads[BASELINE]:.0f} rps)."]
        lines.append("")
    plot_sweep.write_summary(os.path.join(a.dir, "rocksdb_summary.md"), lines)
    plt = plot_sweep.pyplot("plot_rocksdb")
    if plt is not None:
        plot_sweep.plot_vs_load(plt, "plot_rocksdb", os.path.join(a.dir, "rocksdb_slowdown.png"), setups, configs, data,
                                "slow_p999", a.slo, f"SLO {a.slo:g}", "p99.9 slowdown", "RocksDB 50% GET / 50% SCAN")


if __name__ == "__main__":
    main()
