// report.cpp - skyloft_lcbe's header, per-series lines and CSV rows, the final tables and the targets, and
// the cell formats they share (microseconds, percentages, median [min-max] over the runs).
#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>

#include <fmt/format.h>

#include "skyloft/skyloft.hpp"

namespace lcbe {

namespace {

std::string us(double v) { return std::isnan(v) ? "-" : v >= 100 ? fmt::format("{:.0f}", v) : fmt::format("{:.1f}", v); }
std::string pct(double v) { return std::isnan(v) ? "-" : fmt::format("{:.0f}%", 100 * v); }
// "median [min-max]" of one cell over the runs (just the value for one run).
std::string cell(const std::vector<double>& v, const std::function<std::string(double)>& f) {
  bench::Spread sp = bench::spread(v);
  if (std::isnan(sp.median)) return "-";
  if (v.size() < 2) return f(sp.median);
  return fmt::format("{} [{}-{}]", f(sp.median), f(sp.min), f(sp.max));
}

}  // namespace

void print_header(const Plan& plan, const skyloft::loadgen::RequestMix& mix) {
  fmt::print("skyloft_lcbe: LC + BE co-location on cores {} ({} runs; one shared machine: indicative)\n", plan.cores_text, plan.runs);
  bench::print_machine(skyloft::format_core_list(plan.allowed));
  fmt::print("  LC: Poisson arrivals, mix {} (mean {:.2f} us), capacity {:.0f} rps on {} cores; skyloft rr, 30 us quantum (flag);\n"
             "      Linux: a pool of {} threads with one FIFO. Points: {} ms after {} ms of warm-up.\n"
             "  BE: {} workers spinning in units of work; share = units/s over the units one core does per CPU second.\n",
             mix.describe(), mix.mean_ns() / 1000.0, plan.capacity_rps, plan.cores.size(),
             plan.cores.size(), plan.duration_ns / 1'000'000, plan.warmup_ns / 1'000'000, plan.cores.size());
}

std::ofstream open_results_csv(const std::string& path) {
  return bench::open_csv(path,
                         "run,series,load_pct,rate_rps,achieved_rps,sent,completed,unanswered,lc_p50_us,lc_p99_us,lc_p999_us,"
                         "send_lag_p99_us,be_cores,be_share_machine,be_share_spare,acq_n,acq_p50_us,acq_p99_us,acq_max_us,"
                         "others_cpu_pct,unit_rate_per_core,lc_cpu_workers_pct,lc_cpu_ticker_pct,lc_cpu_sysmon_pct,lc_cpu_other_pct\n");
}

void add_series(Results& res, std::ofstream& csv, int run, Series s, const SeriesResult& r, double unit_rate,
                double ncores) {
  auto& per_point = res.points[s];
  auto& spare = res.be_spare[s];
  auto& machine = res.be_machine[s];
  per_point.resize(r.points.size());
  spare.resize(r.points.size());
  machine.resize(r.points.size());
  std::string line = fmt::format("  {:<9}", series_name(s));
  for (std::size_t i = 0; i < r.points.size(); ++i) {
    const PointOut& p = r.points[i];
    per_point[i].push_back(p);
    const double be_cores = p.be_units_per_s / unit_rate;
    const double sm = be_cores / ncores, ss = be_cores / (ncores * (1 - p.load));
    spare[i].push_back(ss);
    machine[i].push_back(sm);
    line += fmt::format(" {:.0f}%:{}/{}", 100 * p.load, us(p.p99_us), pct(ss));
    if (csv.is_open()) {
      csv << fmt::format("{},{},{:.0f},{:.0f},{:.0f},{},{},{},{:.2f},{:.2f},{:.2f},{:.2f},{:.4f},{:.4f},{:.4f},{},{:.2f},{:.2f},{:.2f},{:.1f},{:.0f},"
                         "{:.2f},{:.2f},{:.2f},{:.2f}\n",
                         run + 1, series_name(s), 100 * p.load, p.rate, p.achieved, p.sent, p.completed, p.unanswered,
                         p.p50_us, p.p99_us, p.p999_us, p.lag_p99_us, be_cores, sm, ss, p.acq_n, p.acq_p50_us,
                         p.acq_p99_us, p.acq_max_us, r.others_pct, unit_rate, p.lc_cpu_pct[bench::kWorker],
                         p.lc_cpu_pct[bench::kTicker], p.lc_cpu_pct[bench::kSysmon], p.lc_cpu_pct[bench::kOther]);
    }
  }
  fmt::print("{}   (p99 us / BE share of spare; others {:.0f}% CPU)\n", line, r.others_pct);
  std::fflush(stdout);
}

void print_report(const Plan& plan, Results& res) {
  auto& results = res.points;
  auto& be_spare = res.be_spare;
  auto& be_machine = res.be_machine;
  // Medians over the runs, [min-max] when there are several.
  auto col = [&](Series s, std::size_t i, auto field) {
    std::vector<double> v;
    for (const PointOut& p : results[s][i]) v.push_back(field(p));
    return v;
  };
  auto p50 = [](const PointOut& p) { return p.p50_us; };
  auto p99 = [](const PointOut& p) { return p.p99_us; };
  auto acq99 = [](const PointOut& p) { return p.acq_p99_us; };
  auto acq50 = [](const PointOut& p) { return p.acq_p50_us; };
  const std::size_t npts = results[Series::sky_be].size();
  fmt::print("\nLC latency (us), median of {} run(s) [min-max]\n", plan.runs);
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < npts; ++i) {
    const PointOut& p0 = results[Series::sky_be][i].front();
    rows.push_back({fmt::format("{:.0f}%", 100 * p0.load), fmt::format("{:.0f}", p0.rate),
                    cell(col(Series::sky_alone, i, p50), us), cell(col(Series::sky_alone, i, p99), us),
                    cell(col(Series::sky_be, i, p50), us), cell(col(Series::sky_be, i, p99), us),
                    cell(col(Series::nice19, i, p50), us), cell(col(Series::nice19, i, p99), us),
                    cell(col(Series::idle, i, p50), us), cell(col(Series::idle, i, p99), us)});
  }
  bench::print_table({"load", "rps", "alone p50", "alone p99", "sky+be p50", "sky+be p99", "nice19 p50", "nice19 p99",
                      "idle p50", "idle p99"},
                     rows, 2);
  fmt::print("\nBE CPU share of the spare CPU (cores x (1 - load)); of the whole machine in ()\n");
  rows.clear();
  for (std::size_t i = 0; i < npts; ++i) {
    const PointOut& p0 = results[Series::sky_be][i].front();
    std::vector<std::string> r{fmt::format("{:.0f}%", 100 * p0.load)};
    for (Series s : {Series::sky_be, Series::nice19, Series::idle}) {
      r.push_back(cell(be_spare[s][i], pct) + " (" + pct(bench::median(be_machine[s][i])) + ")");
    }
    rows.push_back(r);
  }
  bench::print_table({"load", "sky+be", "nice19", "idle"}, rows, 1);
  fmt::print("\nCore acquisition (us): submit to start of a 4 us request that found the LC app with nothing in flight\n");
  rows.clear();
  std::vector<double> all_acq_p99;
  for (std::size_t i = 0; i < npts; ++i) {
    const PointOut& p0 = results[Series::sky_be][i].front();
    std::uint64_t n = 0;
    for (const PointOut& p : results[Series::sky_be][i]) n += p.acq_n;
    for (double v : col(Series::sky_be, i, acq99)) all_acq_p99.push_back(v);
    rows.push_back({fmt::format("{:.0f}%", 100 * p0.load), std::to_string(n), cell(col(Series::sky_be, i, acq50), us),
                    cell(col(Series::sky_be, i, acq99), us), cell(col(Series::sky_alone, i, acq99), us),
                    cell(col(Series::nice19, i, acq99), us), cell(col(Series::idle, i, acq99), us)});
  }
  bench::print_table({"load", "sky+be n", "sky+be p50", "sky+be p99", "alone p99", "nice19 p99", "idle p99"}, rows, 1);

  // Where the LC app's CPU goes: what the BE app does not get beyond the LC work itself.
  fmt::print("\nLC app CPU during each point (% of the machine, medians): skyloft workers / ticker / monitor / other\n"
             "threads (the generator); Linux: all threads. The LC work itself is the load x the cores.\n");
  rows.clear();
  for (std::size_t i = 0; i < npts; ++i) {
    const PointOut& p0 = results[Series::sky_be][i].front();
    std::vector<std::string> r{fmt::format("{:.0f}%", 100 * p0.load), fmt::format("{:.1f}", 100 * p0.load)};
    auto role = [&](Series s, int k) {
      return bench::median(col(s, i, [k](const PointOut& p) { return p.lc_cpu_pct[k]; }));
    };
    auto roles = [&](Series s) {
      return fmt::format("{:.1f} / {:.1f} / {:.1f} / {:.1f}", role(s, bench::kWorker), role(s, bench::kTicker),
                         role(s, bench::kSysmon), role(s, bench::kOther));
    };
    auto total = [&](Series s) {
      double t = 0;
      for (int k = 0; k < bench::kRoles; ++k) t += role(s, k);
      return fmt::format("{:.1f}", t);
    };
    r.push_back(roles(Series::sky_alone));
    r.push_back(roles(Series::sky_be));
    r.push_back(total(Series::nice19));
    r.push_back(total(Series::idle));
    rows.push_back(r);
  }
  bench::print_table({"load", "LC work", "alone w/t/m/o", "sky+be w/t/m/o", "nice19", "idle"}, rows, 2);

  // Targets (medians).
  fmt::print("\nTargets (medians over the runs)\n");
  auto met = [](bool ok) { return ok ? "met" : "NOT met"; };
  if (npts > 0) {
    const double sky10 = bench::median(be_spare[Series::sky_be][0]);
    const double lin10 = std::max(bench::median(be_spare[Series::nice19][0]), bench::median(be_spare[Series::idle][0]));
    fmt::print("  at {:.0f}% LC load BE gets >= 70% of spare CPU and no less than under Linux: {} ({} vs nice19 {} / idle {})\n",
               100 * results[Series::sky_be][0].front().load, met(sky10 >= 0.70 && sky10 >= lin10), pct(sky10),
               pct(bench::median(be_spare[Series::nice19][0])), pct(bench::median(be_spare[Series::idle][0])));
  }
  std::string within, below;
  bool ok_within = true, ok_below = true;
  for (std::size_t i = 0; i < npts; ++i) {
    const double load = results[Series::sky_be][i].front().load;
    const double be = bench::median(col(Series::sky_be, i, p99));
    const double alone = bench::median(col(Series::sky_alone, i, p99));
    const double lin = std::min(bench::median(col(Series::nice19, i, p99)), bench::median(col(Series::idle, i, p99)));
    if (load <= 0.70 + 1e-9) {
      const bool ok = be <= 1.5 * alone;
      ok_within = ok_within && ok;
      within += fmt::format(" {:.0f}%:{:.2f}x{}", 100 * load, be / alone, ok ? "" : "!");
    }
    const bool ok = be <= lin;
    ok_below = ok_below && ok;
    below += fmt::format(" {:.0f}%:{}/{}{}", 100 * load, us(be), us(lin), ok ? "" : "!");
  }
  fmt::print("  LC p99 with BE within 1.5x of alone up to 70% load: {} (sky+be / alone:{})\n", met(ok_within), within);
  fmt::print("  LC p99 with BE at or below the better Linux series: {} (sky+be / best Linux, us:{})\n", met(ok_below), below);
  const double acq = bench::median(all_acq_p99);
  fmt::print("  core acquisition <= 50 us at p99: {} (median over points and runs of the per-point p99: {} us; worst point {} us)\n",
             met(acq <= 50), us(acq), us(bench::spread(all_acq_p99).max));
}

}  // namespace lcbe
