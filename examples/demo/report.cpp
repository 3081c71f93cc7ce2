// report.cpp - see report.hpp.
#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <fmt/core.h>

#include "bench_common.hpp"

namespace demo {
namespace {

namespace bench = skyloft::bench;

double quantile(const std::vector<double>& sorted, double q) {
  return sorted.empty() ? std::nan("") : bench::nearest_rank(sorted, q);
}

std::string us(double v) { return std::isnan(v) ? "-" : fmt::format("{:.0f}", v); }

// "median [min..max]" of one statistic over the rounds.
template <class Field>
std::string spread_cell(const std::vector<RunStats>& rounds, Field f) {
  std::vector<double> v;
  for (const auto& r : rounds) v.push_back(f(r));
  const bench::Spread s = bench::spread(v);
  if (rounds.size() == 1) return us(s.median);
  return fmt::format("{} [{}..{}]", us(s.median), us(s.min), us(s.max));
}

template <class Field>
double median_of(const std::vector<RunStats>& rounds, Field f) {
  std::vector<double> v;
  for (const auto& r : rounds) v.push_back(f(r));
  return bench::median(v);
}

double short_p99(const RunStats& r) { return r.short_p99; }
double throughput(const RunStats& r) { return r.throughput; }

}  // namespace

RunStats summarize(const RunOutcome& r) {
  RunStats s;
  const Workload& w = *r.work;
  s.requests = w.recs.size();
  s.cpu_s = r.cpu_s;
  s.gen_lag_max_us = static_cast<double>(r.gen.max_lag_ns) / 1e3;
  std::vector<double> sl, ll;
  u64 first = ~u64{0}, last = 0;
  for (std::size_t i = 0; i < w.recs.size(); ++i) {
    const Record& rec = w.recs[i];
    if (rec.done == 0) continue;
    ++s.completed;
    first = std::min(first, rec.arrival);
    last = std::max(last, rec.done);
    const double lat = static_cast<double>(rec.done - rec.arrival) / 1e3;
    s.max_us = std::max(s.max_us, lat);
    (w.plan->is_long[i] ? ll : sl).push_back(lat);
  }
  if (s.completed > 0 && last > first) s.throughput = static_cast<double>(s.completed) / (static_cast<double>(last - first) / 1e9);
  std::sort(sl.begin(), sl.end());
  std::sort(ll.begin(), ll.end());
  s.short_p50 = quantile(sl, 0.50);
  s.short_p99 = quantile(sl, 0.99);
  s.short_p999 = quantile(sl, 0.999);
  s.long_p50 = quantile(ll, 0.50);
  s.long_p99 = quantile(ll, 0.99);
  return s;
}

void SystemResults::add(int round, const RunOutcome& r) {
  if (label.empty()) label = r.label;
  if (workers.empty() || workers == "-") workers = r.workers;
  if (r.status != "ok") problems.push_back(fmt::format("round {}: {}", round, r.status));
  if (!r.work) return;
  const RunStats s = summarize(r);
  if (s.completed != s.requests) problems.push_back(fmt::format("round {}: {} of {} completed", round, s.completed, s.requests));
  rounds.push_back(s);
  const Workload& w = *r.work;
  for (std::size_t i = 0; i < w.recs.size(); ++i) {
    if (w.recs[i].done == 0) continue;
    (w.plan->is_long[i] ? long_lat : short_lat).push_back(static_cast<double>(w.recs[i].done - w.recs[i].arrival) / 1e3);
  }
}

void print_run_line(int round, const RunOutcome& r, const RunStats& s) {
  fmt::print("  round {}  {:<30} {:>7.0f} req/s  short p50 {:>6} p99 {:>6}  long p99 {:>6}  gen lag {:>6}  cpu {:.2f} s{}\n",
             round, r.label, s.throughput, us(s.short_p50), us(s.short_p99), us(s.long_p99), us(s.gen_lag_max_us),
             s.cpu_s, r.status == "ok" ? "" : "  (" + r.status + ")");
  std::fflush(stdout);
}

bool print_summary(const std::vector<SystemResults>& systems, const std::string& headline_key, double target_ratio,
                   double period_us) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : systems) {
    if (s.rounds.empty()) {
      rows.push_back({s.label, s.workers, "-", "-", "-", "-", "-", "-", "-"});
      continue;
    }
    rows.push_back({s.label, s.workers, spread_cell(s.rounds, throughput),
                    spread_cell(s.rounds, [](const RunStats& r) { return r.short_p50; }),
                    spread_cell(s.rounds, short_p99),
                    spread_cell(s.rounds, [](const RunStats& r) { return r.short_p999; }),
                    spread_cell(s.rounds, [](const RunStats& r) { return r.long_p99; }),
                    spread_cell(s.rounds, [](const RunStats& r) { return r.gen_lag_max_us; }),
                    fmt::format("{:.2f}", median_of(s.rounds, [](const RunStats& r) { return r.cpu_s; }))});
  }
  const std::size_t nrounds = systems.empty() ? 0 : std::max_element(systems.begin(), systems.end(), [](const auto& a, const auto& b) {
                                                       return a.rounds.size() < b.rounds.size();
                                                     })->rounds.size();
  fmt::print("\nSummary over {} round(s): median [min..max] (microseconds, from each request's scheduled arrival)\n\n", nrounds);
  bench::print_table({"system", "threads", "req/s", "short p50", "short p99", "short p99.9", "long p99", "gen lag max", "cpu s"},
                     rows, 2);
  for (const auto& s : systems) {
    for (const auto& p : s.problems) fmt::print("  {}: {}\n", s.label, p);
  }
  for (const auto& s : systems) {
    const double lag = median_of(s.rounds, [](const RunStats& r) { return r.gen_lag_max_us; });
    if (lag > period_us) {
      fmt::print("  {}: the generator ran up to {:.1f} ms late (its threads kept it off the cores); that lateness is "
                 "in the latencies\n", s.label, lag / 1e3);
    }
  }

  // The headline: the designated skyloft system against the best Linux system that kept up.
  const SystemResults* sky = nullptr;
  for (const auto& s : systems) {
    if (s.spec->key == headline_key) sky = &s;
  }
  if (sky == nullptr || sky->rounds.empty()) {
    fmt::print("\nheadline: not judged ({} did not run)\n", headline_key);
    return false;
  }
  const double sky_p99 = median_of(sky->rounds, short_p99), sky_tput = median_of(sky->rounds, throughput);
  const SystemResults* best = nullptr;
  double best_p99 = 0;
  for (const auto& s : systems) {
    if (s.spec->skyloft || s.rounds.empty()) continue;
    const double tput = median_of(s.rounds, throughput), p99 = median_of(s.rounds, short_p99);
    if (tput < 0.95 * sky_tput) {
      fmt::print("  {} is left out of the headline: {:.0f} req/s is below 95% of {}'s {:.0f}\n", s.label, tput,
                 sky->label, sky_tput);
      continue;
    }
    if (best == nullptr || p99 < best_p99) {
      best = &s;
      best_p99 = p99;
    }
  }
  if (best == nullptr) {
    fmt::print("\nheadline: not judged (no Linux system ran at equal throughput)\n");
    return false;
  }
  // The ratio of medians, and the most pessimistic pairing of rounds (Linux's best round vs skyloft's worst).
  const double ratio = best_p99 / sky_p99;
  double lin_min = 1e300, sky_max = 0;
  for (const auto& r : best->rounds) lin_min = std::min(lin_min, r.short_p99);
  for (const auto& r : sky->rounds) sky_max = std::max(sky_max, r.short_p99);
  const bool met = ratio >= target_ratio;
  fmt::print("\nheadline: {}'s short-request p99 is {:.1f}x lower than the best Linux configuration ({}: {} vs {} us, "
             "medians; worst pairing of rounds {:.1f}x) at {:.0f}% of its throughput: target >= {:.0f}x {}.\n",
             sky->label, ratio, best->label, us(best_p99), us(sky_p99), lin_min / sky_max,
             100.0 * sky_tput / median_of(best->rounds, throughput), target_ratio, met ? "met" : "NOT met");
  return true;
}

void write_files(const ReportFiles& files, const std::vector<SystemResults>& systems, const std::string& settings_csv) {
  try {
    if (!files.csv.empty() && files.csv != "-") {
      std::ofstream out = bench::open_csv(
          files.csv, "system,threads,round,requests,completed,throughput_rps,short_p50_us,short_p99_us,short_p999_us,"
                     "long_p50_us,long_p99_us,max_us,gen_lag_max_us,cpu_s,settings\n");
      for (const auto& s : systems) {
        for (std::size_t k = 0; k < s.rounds.size(); ++k) {
          const RunStats& r = s.rounds[k];
          out << fmt::format("\"{}\",{},{},{},{},{:.1f},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f},{:.3f},\"{}\"\n", s.label,
                             s.workers, k + 1, r.requests, r.completed, r.throughput, r.short_p50, r.short_p99,
                             r.short_p999, r.long_p50, r.long_p99, r.max_us, r.gen_lag_max_us, r.cpu_s, settings_csv);
        }
      }
      fmt::print("wrote {}\n", files.csv);
    }
    if (!files.cdf_csv.empty() && files.cdf_csv != "-") {
      // 400 quantiles, denser in the tail (q = 1 - 10^-x), per system and request class.
      std::ofstream out = bench::open_csv(files.cdf_csv, "system,class,quantile,latency_us\n");
      for (const auto& s : systems) {
        for (const auto* lat : {&s.short_lat, &s.long_lat}) {
          std::vector<double> v = *lat;
          if (v.empty()) continue;
          std::sort(v.begin(), v.end());
          const char* cls = lat == &s.short_lat ? "short" : "long";
          for (int k = 0; k <= 400; ++k) {
            const double q = 1.0 - std::pow(10.0, -4.0 * k / 400.0) + 1e-12;
            out << fmt::format("\"{}\",{},{:.6f},{:.2f}\n", s.label, cls, std::min(1.0, q), bench::nearest_rank(v, std::min(1.0, q)));
          }
        }
      }
      fmt::print("wrote {}\n", files.cdf_csv);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_demo: {}\n", e.what());
  }
}

}  // namespace demo
