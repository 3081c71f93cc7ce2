#!/usr/bin/python3
"""Plots skyloft_demo's latency distributions (run with Debian's /usr/bin/python3 and python3-matplotlib).

Reads the quantile CSV the demo writes (--cdf-csv: system, class, quantile, latency_us; every round's
requests pooled) and draws, per request class, the fraction of requests slower than a latency (a
complementary CDF, log-log), one line per system: the lower and further left a line, the better; the
p99 is where a line crosses 10^-2.

usage: /usr/bin/python3 examples/demo/plot_demo.py DEMO_CDF.csv OUT.png
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    """{class: {system: [(latency_us, fraction slower)]}}, systems in file order."""
    data = defaultdict(dict)
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            pts = data[r["class"]].setdefault(r["system"], [])
            pts.append((float(r["latency_us"]), max(1e-5, 1.0 - float(r["quantile"]))))
    return data


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = load(sys.argv[1])
    classes = [c for c in ("short", "long") if c in data]
    if not classes:
        sys.exit(f"{sys.argv[1]}: no rows")
    fig, axes = plt.subplots(1, len(classes), figsize=(6.5 * len(classes), 4.8), squeeze=False)
    for ax, cls in zip(axes[0], classes):
        for system, pts in data[cls].items():
            x = [p[0] for p in pts]
            y = [p[1] for p in pts]
            style = "-" if system.startswith("skyloft") else "--"
            ax.plot(x, y, style, label=system, linewidth=1.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axhline(1e-2, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xlabel("latency from scheduled arrival (us)")
        ax.set_ylabel("fraction of requests slower")
        ax.set_title(f"{cls} requests")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8)
    fig.suptitle("skyloft_demo: bursty short/long mix (solid: skyloft, dashed: Linux threads)")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
