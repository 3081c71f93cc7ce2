#!/usr/bin/python3
"""Plots skyloft_multiapp_switch's CSV (Debian's /usr/bin/python3 with python3-matplotlib).

One group of bars per run: the raw cross-process futex hand-over on one core (one way), and skyloft's
inter-application switch p50 and p99 on that core, measured in the same run. The dashed line is the
target: 1.5x the median raw hand-over.

usage: /usr/bin/python3 bench/plot_multiapp_switch.py SWITCH.csv OUT.png
"""
import csv
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_sweep import pyplot  # noqa: E402

BARS = [("raw_futex_oneway_us", "raw futex hand-over (one way)", "tab:gray"),
        ("skyloft_switch_p50_us", "skyloft inter-app switch p50", "tab:blue"),
        ("skyloft_switch_p99_us", "skyloft inter-app switch p99", "tab:orange")]
TARGET_RATIO = 1.5


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(argv[1], newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [k for k, _, _ in BARS if rows and k not in rows[0]]
    if not rows or missing:
        print(f"plot_multiapp_switch: {argv[1]}: no rows, or columns missing: {missing}", file=sys.stderr)
        return 1
    plt = pyplot("plot_multiapp_switch")
    if plt is None:
        return 0
    width = 0.8 / len(BARS)
    fig, ax = plt.subplots(figsize=(max(10.0, 4.8 + 1.6 * len(rows)), 4.5))
    for i, (key, label, color) in enumerate(BARS):
        xs = [j + (i - (len(BARS) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, [float(r[key]) for r in rows], width, label=label, color=color)
    raw_median = statistics.median(float(r["raw_futex_oneway_us"]) for r in rows)
    ax.axhline(TARGET_RATIO * raw_median, color="tab:red", linestyle="--",
               label=f"target: {TARGET_RATIO}x the median raw hand-over ({TARGET_RATIO * raw_median:.2f} us)")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"run {r['run']}\n{r['switches']} switches" for r in rows])
    ax.set_yscale("log")  # a p99 of a loaded machine is orders above the p50s
    ax.set_ylabel("latency (us, log scale)")
    ax.set_title("One core switched between two applications (skyloftd)\nvs a raw cross-process futex hand-over, same run")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not over them
    fig.tight_layout()
    fig.savefig(argv[2], dpi=110)
    print(f"plot_multiapp_switch: wrote {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
