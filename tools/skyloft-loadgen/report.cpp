// report.cpp - the table and CSV of load points (report.hpp), through bench_common.hpp's table and CSV functions.
#include "report.hpp"

#include <fmt/core.h>

#include "bench_common.hpp"
#include "units.hpp"

namespace skyloft::loadgen {
namespace {

std::string us(std::uint64_t ns) { return fmt::format("{:.1f}", static_cast<double>(ns) / 1e3); }
std::string slow(const PointResult& r, double q) {
  return r.has_service_time ? fmt::format("{:.1f}", static_cast<double>(r.slowdown_milli.quantile(q)) / 1e3) : "";
}

}  // namespace

void PointResult::merge(const PointResult& o) {
  sent_in_window += o.sent_in_window;
  completed_in_window += o.completed_in_window;
  sent += o.sent;
  completed += o.completed;
  unanswered += o.unanswered;
  errors += o.errors;
  latency_ns.merge(o.latency_ns);
  slowdown_milli.merge(o.slowdown_milli);
  send_lag_ns.merge(o.send_lag_ns);
}

std::string csv_header() {
  return "label,target_rps,achieved_rps,completed_rps,sent,completed,unanswered,errors,p50_us,p90_us,p99_us,"
         "p999_us,p9999_us,max_us,mean_us,slow_p50,slow_p99,slow_p999,send_lag_p99_us\n";
}

std::string csv_row(const PointResult& r) {
  const Histogram& h = r.latency_ns;
  return fmt::format("{},{:.0f},{:.0f},{:.0f},{},{},{},{},{},{},{},{},{},{},{:.1f},{},{},{},{}\n", r.label, r.target_rps,
                     r.achieved_rps(), r.completed_rps(), r.sent, r.completed, r.unanswered, r.errors,
                     us(h.quantile(0.5)), us(h.quantile(0.9)), us(h.quantile(0.99)), us(h.quantile(0.999)),
                     us(h.quantile(0.9999)), us(h.max()), h.mean() / 1e3, slow(r, 0.5), slow(r, 0.99), slow(r, 0.999),
                     us(r.send_lag_ns.quantile(0.99)));
}

void print_points(const std::vector<PointResult>& points) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : points) {
    const Histogram& h = r.latency_ns;
    rows.push_back({r.label, format_rate(r.target_rps), fmt::format("{:.0f}", r.achieved_rps()),
                    fmt::format("{:.0f}", r.completed_rps()), std::to_string(r.unanswered), std::to_string(r.errors),
                    us(h.quantile(0.5)), us(h.quantile(0.9)), us(h.quantile(0.99)), us(h.quantile(0.999)),
                    us(h.quantile(0.9999)), slow(r, 0.5), slow(r, 0.99), slow(r, 0.999),
                    us(r.send_lag_ns.quantile(0.99))});
  }
  bench::print_table({"label", "target", "achieved/s", "completed/s", "unans", "errors", "p50 us", "p90 us", "p99 us",
                      "p99.9 us", "p99.99 us", "slow p50", "slow p99", "slow p99.9", "lag p99 us"},
                     rows, 1);
}

}  // namespace skyloft::loadgen
