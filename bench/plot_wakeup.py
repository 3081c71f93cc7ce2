#!/usr/bin/python3
"""Plots skyloft_wakeup's CSV files (run with Debian's /usr/bin/python3 and python3-matplotlib).

  wakeup.csv        -> wakeup_p99.png    p99 wake-up latency vs workers, one line per system (log y)
  wakeup_sweep.csv  -> wakeup_sweep.png  p99 wake-up latency vs requests/s, one line per mechanism,
                                         points labelled by quantum; native Linux (default slice, and
                                         custom slices) as reference points

usage: /usr/bin/python3 bench/plot_wakeup.py [--csv-dir results] [--out-dir DIR]
"""
import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402


def label_log_axis(ax):
    """Labels the minor ticks of a log y axis too when it spans less than two decades."""
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 100:
        fmt = FuncFormatter(lambda y, _: f"{y:g}")
        ax.yaxis.set_major_formatter(fmt)
        ax.yaxis.set_minor_formatter(fmt)
        ax.tick_params(axis="y", which="minor", labelsize=7)


def read_rows(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("ok") == "1"]
    for r in rows:
        for k in ("wake_p50_us", "wake_p99_us", "wake_p999_us", "req_p99_us", "rps"):
            r[k] = float(r[k])
        r["workers"] = int(r["workers"])
        r["quantum_us"] = int(r["quantum_us"])
        r["slice_us"] = int(r.get("slice_us") or 0)
    return rows


def native_label(r):
    return "native Linux threads" + (f", {r['slice_us']} us slices" if r["slice_us"] else "")


def plot_workers(rows, out):
    systems = []
    for r in rows:
        if r["system"] not in systems:
            systems.append(r["system"])
    fig, ax = plt.subplots(figsize=(9, 5.5))
    markers = "os^vD<>ph*"
    for i, s in enumerate(systems):
        pts = sorted((r["workers"], r["wake_p99_us"]) for r in rows if r["system"] == s)
        style = dict(marker=markers[i % len(markers)], linewidth=1.6, markersize=5)
        first = next(r for r in rows if r["system"] == s)
        if first["native"] == "1":
            style.update(color="black", linewidth=2.6 if not first["slice_us"] else 1.6, linestyle="--")
        elif s.startswith("fifo"):
            style.update(color="gray", linewidth=2.0)
        label = native_label(first) if first["native"] == "1" else "skyloft " + s
        ax.plot([p[0] for p in pts], [max(p[1], 0.1) for p in pts], label=label, **style)
    ax.set_yscale("log")
    ax.set_xscale("log", base=2)
    ws = sorted({r["workers"] for r in rows})
    ax.set_xticks(ws)
    ax.set_xticklabels([str(w) for w in ws])
    ax.set_xlabel("worker threads (matrix multiply ~1 ms per request)")
    ax.set_ylabel("p99 wake-up latency (us, log scale)")
    nmsg = rows[0]["message_threads"] if rows else "?"
    ax.set_title(f"schbench-style wake-up latency ({nmsg} message threads)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_sweep(rows, out):
    native = [r for r in rows if r["native"] == "1"]
    sky = [r for r in rows if r["native"] != "1"]
    mechs = []
    for r in sky:
        if r["mechanism"] not in mechs:
            mechs.append(r["mechanism"])
    fig, ax = plt.subplots(figsize=(9, 5.5))
    markers = "os^vD<>"
    for i, m in enumerate(mechs):
        pts = sorted(((r["quantum_us"], r["rps"], r["wake_p99_us"], r["preempt_points"]) for r in sky
                      if r["mechanism"] == m))
        points = "with preempt points" if pts and pts[0][3] == "1" else "no preempt points"
        line, = ax.plot([p[1] for p in pts], [max(p[2], 0.1) for p in pts], marker=markers[i % len(markers)],
                        linewidth=1.6, markersize=6, label=f"{m} ({points})")
        for q, x, y, _ in pts:
            ax.annotate(f"{q}us", (x, max(y, 0.1)), textcoords="offset points", xytext=(5, 4), fontsize=7,
                        color=line.get_color())
    # Reference lines from Linux at its best latency: the shortest custom slice, else the default.
    sliced = [r for r in native if r["slice_us"]]
    ref = min(sliced, key=lambda r: r["slice_us"]) if sliced else (native[0] if native else None)
    for r in native:
        ax.plot([r["rps"]], [r["wake_p99_us"]], marker="*" if not r["slice_us"] else "X",
                markersize=14 if not r["slice_us"] else 9, linestyle="none", label=native_label(r),
                color="black" if not r["slice_us"] else None)
    if ref is not None:
        ax.axhline(ref["wake_p99_us"] / 10, color="black", linewidth=0.8, linestyle=":",
                   label=f"{native_label(ref)}: p99 / 10")
        ax.axvline(ref["rps"] * 0.95, color="gray", linewidth=0.8, linestyle=":",
                   label=f"{native_label(ref)}: 95% of req/s")
    ax.set_yscale("log")
    label_log_axis(ax)
    ax.set_xlabel("requests per second")
    ax.set_ylabel("p99 wake-up latency (us, log scale)")
    policy = sky[0]["policy"] if sky else "?"
    workers = rows[0]["workers"] if rows else "?"
    ax.set_title(f"quantum sweep: skyloft {policy}, {workers} workers (labels: quantum)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv-dir", default="results")
    ap.add_argument("--out-dir", default=None, help="default: the CSV directory")
    a = ap.parse_args()
    out_dir = a.out_dir or a.csv_dir
    os.makedirs(out_dir, exist_ok=True)
    done = []
    p = os.path.join(a.csv_dir, "wakeup.csv")
    if os.path.exists(p):
        rows = read_rows(p)
        if rows:
            plot_workers(rows, os.path.join(out_dir, "wakeup_p99.png"))
            done.append(os.path.join(out_dir, "wakeup_p99.png"))
    p = os.path.join(a.csv_dir, "wakeup_sweep.csv")
    if os.path.exists(p):
        rows = read_rows(p)
        if rows:
            plot_sweep(rows, os.path.join(out_dir, "wakeup_sweep.png"))
            done.append(os.path.join(out_dir, "wakeup_sweep.png"))
    if not done:
        print("plot_wakeup.py: nothing to plot (no wakeup.csv / wakeup_sweep.csv with data)", file=sys.stderr)
        return 1
    print("plots: " + ", ".join(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
