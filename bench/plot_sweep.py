"""plot_sweep.py - what the sweep plotters of bench/ share (plot_run_all, plot_rocksdb, memcached's
plot_memcached): writing the markdown summary, loading matplotlib (Debian's python3-matplotlib), and one
figure of a latency metric against offered load, one panel per setup."""
import os
import sys


def write_summary(path, lines):
    """Writes the summary lines to `path` and prints them."""
    summary = "\n".join(lines)
    with open(path, "w") as f:
        f.write(summary)
    print(summary)


def pyplot(prog):
    """matplotlib.pyplot with a file backend, or None (with a message naming the Debian package)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"{prog}: matplotlib missing (Debian: python3-matplotlib); no plot", file=sys.stderr)
        return None
    return plt


def plot_vs_load(plt, prog, out, setups, configs, data, metric, slo, slo_label, ylabel, title):
    """One log-scale panel per (setup, setup_title): data[(setup, config)] rows' `metric` against target_rps."""
    fig, axes = plt.subplots(1, len(setups), figsize=(6.5 * len(setups), 4.5), squeeze=False)
    for ax, (setup, setup_title) in zip(axes[0], setups):
        for c in configs:
            pts = [r for r in data.get((setup, c), []) if r[metric] != float("inf")]  # rates the median run missed
            if pts:
                ax.plot([r["target_rps"] / 1e3 for r in pts], [max(r[metric], 1) for r in pts], marker="o",
                        markersize=3, label=c)
        ax.axhline(slo, color="grey", linestyle="--", linewidth=1, label=slo_label)
        ax.set_yscale("log")
        ax.set_xlabel("offered load (k requests/s)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}, {setup_title}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"{prog}: wrote {out}")


def read_points(path, fields):
    """A skyloft-loadgen CSV's rows sorted by target rate, with `fields` as floats (an empty cell is nan)."""
    import csv
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in fields:
            r[k] = float(r[k]) if r[k] != "" else float("nan")
    return sorted(rows, key=lambda r: r["target_rps"])


def median_over_runs(runs, fields):
    """One sweep from several runs of the same sweep: per target rate, the median of each of `fields`.
    A rate that a run did not reach (its sweep stopped after a point past the SLO) counts as infinite
    there, so a point is only as good as the median run at it. Each point also gets "runs": how many."""
    import statistics
    rates = sorted({r["target_rps"] for pts in runs for r in pts})
    curve = []
    for rate in rates:
        rows = [next((r for r in pts if r["target_rps"] == rate), None) for pts in runs]
        point = {"target_rps": rate, "runs": len(runs)}
        for k in fields:
            if k == "target_rps":
                continue
            point[k] = statistics.median(r[k] if r is not None else float("inf") for r in rows)
        curve.append(point)
    return curve


def max_load(points, within_slo):
    """The highest target rate before the first point (in rate order) that `within_slo` rejects; 0 if none."""
    best = 0.0
    for r in points:
        if not within_slo(r):
            break
        best = r["target_rps"]
    return best


def load_ratio(x, base_load, base_points):
    """(ratio or None, text) of a maximum load `x` to a baseline's. A baseline that met the SLO at none of
    its rates (base_load 0) has its maximum below its lowest rate: the ratio is then a lower bound, "> Nx"."""
    if base_load > 0:
        return x / base_load, f"{x / base_load:.2f}x"
    lowest = min((r["target_rps"] for r in base_points), default=0)
    if x > 0 and lowest > 0:
        return x / lowest, f"> {x / lowest:.1f}x"
    return None, "n/a"


def verdict(r, target):
    """met / NOT met for a ratio against its target; a missing ratio cannot be judged."""
    return "not judgeable" if r is None else ("met" if r >= target else "NOT met")


def read_runs(directory, stem, fields):
    """(points, runs) of `stem`: the per-rate median over DIR/stem.run<K>.csv (median_over_runs), or the
    points of DIR/stem.csv for a single run; (None, 0) when neither exists."""
    import glob
    paths = sorted(glob.glob(os.path.join(directory, f"{stem}.run*.csv")))
    single = os.path.join(directory, f"{stem}.csv")
    if not paths and os.path.exists(single):
        return read_points(single, fields), 1
    if not paths:
        return None, 0
    return median_over_runs([read_points(p, fields) for p in paths], fields), len(paths)


def read_series(directory, name, setups, configs, fields):
    """{(setup, config): points} for every `name.format(setup=..., config=...)` stem (without .csv) present in
    `directory`, each the per-rate median of its runs (read_runs); and {(setup, config): runs}."""
    data, runs = {}, {}
    for setup, _ in setups:
        for c in configs:
            pts, n = read_runs(directory, name.format(setup=setup, config=c), fields)
            if pts is not None:
                data[(setup, c)], runs[(setup, c)] = pts, n
    return data, runs
