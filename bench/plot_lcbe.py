#!/usr/bin/python3
"""Plots skyloft_lcbe's CSV (run with Debian's /usr/bin/python3 and python3-matplotlib).

Left: LC p99 latency vs LC load, one line per series (log y). Right: the BE app's share of the spare CPU
vs LC load. Each point is the median over the runs, the bar its min..max.

usage: /usr/bin/python3 bench/plot_lcbe.py LCBE.csv OUT.png
"""
import csv
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERIES = [("sky-alone", "skyloft, LC alone"), ("sky+be", "skyloft, LC + BE (lcbe)"),
          ("nice19", "Linux, BE at nice 19"), ("idle", "Linux, BE at SCHED_IDLE")]
COLOR = {"sky-alone": "tab:blue", "sky+be": "tab:orange", "nice19": "tab:green", "idle": "tab:red"}  # same in both panels


def by_series(rows, field):
    """{series: [(load, median, min, max)]} of one numeric column."""
    acc = defaultdict(lambda: defaultdict(list))
    for r in rows:
        acc[r["series"]][float(r["load_pct"])].append(float(r[field]))
    out = {}
    for s, loads in acc.items():
        out[s] = [(l, statistics.median(v), min(v), max(v)) for l, v in sorted(loads.items())]
    return out


def draw(ax, data, names, scale=1.0):
    for key, label in SERIES:
        if key not in data or key not in names:
            continue
        pts = data[key]
        x = [p[0] for p in pts]
        y = [p[1] * scale for p in pts]
        lo = [(p[1] - p[2]) * scale for p in pts]
        hi = [(p[3] - p[1]) * scale for p in pts]
        ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=label, color=COLOR[key])


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_lcbe.py LCBE.csv OUT.png")
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"plot_lcbe.py: {sys.argv[1]} has no rows")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    draw(left, by_series(rows, "lc_p99_us"), {k for k, _ in SERIES})
    left.set_yscale("log")
    left.set_xlabel("LC load (% of capacity)")
    left.set_ylabel("LC p99 latency (us)")
    left.set_title("LC tail latency")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    draw(right, by_series(rows, "be_share_spare"), {"sky+be", "nice19", "idle"}, scale=100.0)
    right.axhline(70, color="grey", linestyle="--", linewidth=1)
    right.set_xlabel("LC load (% of capacity)")
    right.set_ylabel("BE share of the spare CPU (%)")
    right.set_title("BE throughput")
    right.grid(True, alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
