#!/usr/bin/python3
"""bench/run-all's plot and summary (run with Debian's /usr/bin/python3 and python3-matplotlib).

Reads DIR/synthetic_<setup>_<config>.csv (skyloft-loadgen's columns; setup: inprocess, tcp) and writes
  DIR/synthetic_p99.png  p99 latency vs offered load, one line per configuration, one panel per setup
  DIR/summary.md         every configuration's maximum load with p99 <= the SLO, and the ratios of the issue's
                         targets (best preemptive skyloft configuration vs the better Linux pool and vs
                         sq-none). A baseline that meets the SLO at none of the grid's rates has a maximum
                         load below the lowest rate: the ratio is then a lower bound ("> Nx").
The maximum load under the SLO is the highest offered rate of the sweep's points up to the first one that
misses it (p99 above the SLO, or a request left unanswered): later points that meet it again are noise. A
last column gives the same at ten times the SLO, to show the trend where nothing meets the SLO (a shared
2-core machine).

usage: /usr/bin/python3 bench/plot_run_all.py --dir DIR [--slo-us 500] [--configs "linux sq-none ..."]
                                              [--note TEXT]
"""
import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_sweep  # noqa: E402  (bench/plot_sweep.py)

SETUPS = [("inprocess", "in-process generator"), ("tcp", "loopback TCP, skyloft-loadgen")]


def max_load_under_slo(points, slo_us):
    return plot_sweep.max_load(points, lambda r: r["p99_us"] <= slo_us and r["unanswered"] == 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--slo-us", type=float, default=500)
    ap.add_argument("--configs", default="linux linux-tuned sq-none sq-10us sq-30us rr-30us")
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    configs = a.configs.split()
    data, nruns = plot_sweep.read_series(a.dir, "synthetic_{setup}_{config}", SETUPS, configs,
                                  ("target_rps", "achieved_rps", "p99_us", "p50_us", "unanswered"))
    if not data:
        sys.exit(f"plot_run_all: no synthetic_*.csv in {a.dir}")
    setups = [s for s in SETUPS if any((s[0], c) in data for c in configs)]

    lines = ["# bench/run-all summary", "",
             f"Synthetic bimodal (99.5% 4 us / 0.5% 10 ms spin, Poisson), SLO p99 <= {a.slo_us:g} us. {a.note}", ""]
    for setup, title in setups:
        relaxed_us = 10 * a.slo_us
        runs_text = ", ".join(sorted({str(n) for (s, _), n in nruns.items() if s == setup}))
        lines += [f"## {title}", "", f"Each figure is the per-rate median over the runs (runs per configuration: {runs_text}); "
                  "a rate that a run's sweep did not reach counts as a miss in it.", "", "| configuration | max load under SLO (rps) | vs linux | vs sq-none | p99 at that load (us) "
                  f"| max load with p99 <= {relaxed_us / 1e3:g} ms (rps) |",
                  "|---|---:|---:|---:|---:|---:|"]
        loads = {c: max_load_under_slo(data[(setup, c)], a.slo_us) for c in configs if (setup, c) in data}
        linuxes = [c for c in loads if c.startswith("linux")]
        base_linux = max(linuxes, key=loads.get) if linuxes else None

        def ratio(x, base):
            if base is None or base not in loads:
                return None, "n/a"
            return plot_sweep.load_ratio(x, loads[base], data[(setup, base)])

        for c, load in loads.items():
            at = [r["p99_us"] for r in data[(setup, c)] if r["target_rps"] == load]
            relaxed = max_load_under_slo(data[(setup, c)], relaxed_us)
            lines.append(f"| {c} | {load:.0f} | {ratio(load, base_linux)[1]} | {ratio(load, 'sq-none')[1]} | "
                         f"{at[0] if at else float('nan'):.1f} | {relaxed:.0f} |")
        preemptive = {c: v for c, v in loads.items() if not c.startswith("linux") and c != "sq-none"}
        if preemptive and base_linux is not None and "sq-none" in loads:
            best = max(preemptive, key=preemptive.get)
            (bl, tl), (bs, ts) = ratio(preemptive[best], base_linux), ratio(preemptive[best], "sq-none")
            lines += ["", f"Best preemptive configuration: **{best}** ({preemptive[best]:.0f} rps), {tl} the better "
                      f"Linux pool ({base_linux}: {loads[base_linux]:.0f} rps; target >= 1.5x: {plot_sweep.verdict(bl, 1.5)}), "
                      f"{ts} sq-none ({loads['sq-none']:.0f} rps; target >= 1.3x: {plot_sweep.verdict(bs, 1.3)})."]
        lines.append("")
    plot_sweep.write_summary(os.path.join(a.dir, "summary.md"), lines)
    plt = plot_sweep.pyplot("plot_run_all")
    if plt is not None:
        plot_sweep.plot_vs_load(plt, "plot_run_all", os.path.join(a.dir, "synthetic_p99.png"), setups, configs, data,
                                "p99_us", a.slo_us, f"SLO {a.slo_us:g} us", "p99 latency (us)", "synthetic bimodal")


if __name__ == "__main__":
    main()
