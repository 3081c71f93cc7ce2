// report.cpp - skyloft_micro's rows and targets, the checks and cell formatting, the table and the CSV.
#include "report.hpp"

#include <cstdio>
#include <exception>
#include <fstream>
#include <utility>

#include <fmt/core.h>
#include <fmt/format.h>

namespace skyloft::bench::micro {

namespace {

// other / skyloft: how many times faster skyloft is (>1: skyloft faster).
std::optional<double> speedup(const Series& sky, const Series& other) {
  if (!sky.measured || !other.measured || sky.median <= 0) return std::nullopt;
  return other.median / sky.median;
}

// Check: the skyloft median is at most `ns`.
Row::Check at_most_ns(std::string what, double ns) {
  return {std::move(what), [ns](const Row& r) -> std::optional<bool> {
            if (!r.sky.measured) return std::nullopt;
            return r.sky.median <= ns;
          }};
}

// Check: speedup(sky, r.*other) is at least `factor`.
Row::Check faster_by(std::string what, Series Row::*other, double factor) {
  return {std::move(what), [other, factor](const Row& r) -> std::optional<bool> {
            auto s = speedup(r.sky, r.*other);
            if (!s) return std::nullopt;
            return *s >= factor;
          }};
}

// Check: the skyloft median exceeds `base`'s skyloft median by at most `ns` (a cost added to the same op).
Row::Check at_most_ns_above(std::string what, const Row* base, double ns) {
  return {std::move(what), [base, ns](const Row& r) -> std::optional<bool> {
            if (!r.sky.measured || !base->sky.measured) return std::nullopt;
            return r.sky.median - base->sky.median <= ns;
          }};
}

std::string fmt_ns(double v) {
  if (v < 100) return fmt::format("{:.1f}", v);
  return fmt::format("{:.0f}", v);
}

std::string cell(const Series& s) {
  if (!s.measured) return s.na.empty() ? "n/a" : s.na;
  // A measured series may carry a marker in `na` pointing at a note below the table.
  return fmt::format("{}{} [{}-{}]", s.na, fmt_ns(s.median), fmt_ns(s.min), fmt_ns(s.max));
}

std::string ratio_cell(std::optional<double> r) {
  if (!r) return "-";
  if (*r >= 100) return fmt::format("{:.0f}x", *r);
  if (*r >= 10) return fmt::format("{:.1f}x", *r);
  return fmt::format("{:.2f}x", *r);
}

std::string met_cell(const Row& row) {
  if (row.checks.empty()) return "-";
  std::vector<std::string> failed, unknown;
  for (const auto& c : row.checks) {
    auto r = c.ok(row);
    if (!r) unknown.push_back(c.what);
    else if (!*r) failed.push_back(c.what);
  }
  if (failed.empty() && unknown.empty()) return "yes";
  // Failed checks are named; checks that lack a measurement (skipped / failed cells) show as "?".
  std::string out;
  if (!failed.empty()) out = fmt::format("NO: {}", fmt::join(failed, ", "));
  if (!unknown.empty()) out += out.empty() ? "?" : "; ?";
  return out;
}

}  // namespace

std::vector<Row> make_rows() {
  std::vector<Row> rows;
  rows.reserve(8);  // the per-task TLS rows' checks point at the rows above them
  rows.push_back({"spawn_join", "spawn+join (empty)", "ns/spawn+join", {}, {}, {},
                  "<=100ns, >=2.5x Boost, >=300x std",
                  {at_most_ns("<=100ns", 100), faster_by(">=2.5x Boost", &Row::boost, 2.5),
                   faster_by(">=300x std", &Row::stdt, 300)}});
  rows.push_back({"yield", "yield ping-pong, 1 core", "ns/yield", {}, {}, {},
                  "<=20ns, >=3x Boost",
                  {at_most_ns("<=20ns", 20), faster_by(">=3x Boost", &Row::boost, 3)}});
  rows.push_back({"mutex", "mutex lock+unlock, uncont.", "ns/lock+unlock", {}, {}, {},
                  "<=1.5x std::mutex",
                  {faster_by("<=1.5x std", &Row::stdt, 1.0 / 1.5)}});
  rows.push_back({"condvar_1core", "condvar ping-pong, 1 core", "ns/round trip", {}, {}, {},
                  ">=3x Boost, >=300x std",
                  {faster_by(">=3x Boost", &Row::boost, 3), faster_by(">=300x std", &Row::stdt, 300)}});
  rows.push_back({"condvar_2core", "condvar ping-pong, 2 cores", "ns/round trip", {}, {}, {}, "-", {}});
  // The same two switch-heavy rows with a TLS block per task (Config::task_tls, skyloft-run's default).
  rows.push_back({"yield_tls", "yield ping-pong, per-task TLS", "ns/yield", {}, {}, {}, "<=5ns above yield",
                  {at_most_ns_above("<=5ns above yield", &rows[1], 5)}});
  rows.push_back({"spawn_join_tls", "spawn+join, per-task TLS", "ns/spawn+join", {}, {}, {}, "-", {}});
  return rows;
}

bool selected(const std::string& key) {
  return g_opt.filter.empty() || key.find(g_opt.filter) != std::string::npos;
}

void print_report(const std::vector<Row>& rows, int core, int c0, int c1, const std::string& cross_note) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> head = {"benchmark (unit)", "skyloft", "std::thread", "Boost.Fiber",
                                   "vs Boost", "vs std", "target", "met"};
  for (const auto& r : rows) {
    cells.push_back({fmt::format("{} ({})", r.title, r.unit), cell(r.sky), cell(r.stdt), cell(r.boost),
                     ratio_cell(speedup(r.sky, r.boost)), ratio_cell(speedup(r.sky, r.stdt)), r.target,
                     met_cell(r)});
  }
  fmt::print("\n");
  // The first column (benchmark) and the last two (target, met) are left-aligned.
  skyloft::bench::print_table(head, cells, [](std::size_t i) { return i == 0 || i >= 6; });
  fmt::print("\n");
  fmt::print("vs Boost / vs std = other median / skyloft median (>1: skyloft faster). Nothing subtracted.\n");
  fmt::print("std::thread: yield = std::this_thread::yield (sched_yield) with both threads pinned to core {};\n"
             "  spawn+join, mutex and 1-core condvar run on core {} too; 2-core condvar pins the threads to {} and {}.\n",
             core, core, c0, c1);
  fmt::print("Boost.Fiber: round_robin scheduler, fibers on one thread pinned to core {}; the 2-core condvar row\n"
             "  uses two kernel threads (cores {},{}) each running one party in its main fiber with\n"
             "  boost::fibers::mutex/condition_variable across threads.\n",
             core, c0, c1);
  if (!cross_note.empty()) fmt::print("{}\n", cross_note);
}

bool write_csv(const std::vector<Row>& rows) {
  try {
    std::ofstream out = skyloft::bench::open_csv(g_opt.csv, "benchmark,system,median_ns,min_ns,max_ns,runs,ops_per_run\n");
    for (const auto& r : rows) {
      const std::pair<const char*, const Series*> sys[] = {
          {"skyloft", &r.sky}, {"std_thread", &r.stdt}, {"boost_fiber", &r.boost}};
      for (const auto& [name, s] : sys) {
        if (!s->measured) continue;
        out << fmt::format("{},{},{:.3f},{:.3f},{:.3f},{},{}\n", r.key, name, s->median, s->min, s->max, s->runs,
                           s->ops);
      }
    }
    fmt::print("CSV: {}\n", g_opt.csv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_micro: writing CSV failed: {}\n", e.what());
    return false;
  }
  return true;
}

}  // namespace skyloft::bench::micro
