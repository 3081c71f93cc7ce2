// main.cpp - skyloft-loadgen: sweeps load points against a server and reports each (options.hpp,
// client.hpp, report.hpp).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <fmt/core.h>

#include "bench_common.hpp"
#include "client.hpp"
#include "options.hpp"
#include "report.hpp"
#include "units.hpp"

namespace lg = skyloft::loadgen;

namespace {

// The progress line: on a terminal rewritten in place every 0.5 s, otherwise one line per second.
void show_progress(const lg::Options& o, double rate, const lg::Progress& p, const std::atomic<bool>& done) {
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const auto start = std::chrono::steady_clock::now();
  const double total_s = static_cast<double>(o.warmup_ns + o.duration_ns) / 1e9;
  const auto period = std::chrono::milliseconds(tty ? 500 : 1000);
  auto next = start + period;
  while (!done.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (std::chrono::steady_clock::now() < next) continue;
    next += period;
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print(stderr, "{}skyloft-loadgen: {} rps  t {:.1f}/{:.1f} s  sent {}  received {}  errors {}{}",
               tty ? "\r" : "", lg::format_rate(rate), t, total_s, p.sent.load(), p.received.load(), p.errors.load(),
               tty ? "   " : "\n");
  }
  if (tty) fmt::print(stderr, "\r{:79}\r", "");
}

}  // namespace

int main(int argc, char** argv) {
  const lg::Options o = lg::parse_options(argc, argv);
  fmt::print("skyloft-loadgen: {} over {} to {}, {} arrivals, {}, {} connections, {} generator thread(s)\n",
             o.protocol == lg::Protocol::synthetic ? "synthetic" : "memcached",
             o.transport == lg::Transport::tcp ? "tcp" : "udp", o.server, lg::arrival_kind_name(o.arrival),
             o.protocol == lg::Protocol::synthetic ? "mix " + o.request_mix().describe()
                                                   : fmt::format("{} keys, {}-byte values, get ratio {}",
                                                                 o.memcached.keys, o.memcached.value_size,
                                                                 o.memcached.get_ratio),
             o.connections, o.threads);
  skyloft::bench::print_machine(skyloft::format_core_list(skyloft::allowed_cores()));
  std::ofstream csv;
  try {
    if (!o.csv.empty()) csv = skyloft::bench::open_csv(o.csv, lg::csv_header());
    if (o.protocol == lg::Protocol::memcached && o.memcached.prefill) lg::memcached_prefill(o);
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft-loadgen: {}\n", e.what());
    return 1;
  }
  std::vector<lg::PointResult> points;
  for (std::size_t i = 0; i < o.rates.size(); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(o.pause_ns));
    lg::Progress progress;
    std::atomic<bool> done{false};
    std::thread shower;
    if (!o.quiet) shower = std::thread([&] { show_progress(o, o.rates[i], progress, done); });
    lg::PointResult r;
    try {
      r = lg::run_point(o, o.rates[i], progress);
    } catch (const std::exception& e) {
      done = true;
      if (shower.joinable()) shower.join();
      fmt::print(stderr, "skyloft-loadgen: {}\n", e.what());
      return 1;
    }
    done = true;
    if (shower.joinable()) shower.join();
    if (csv.is_open()) {
      csv << lg::csv_row(r);
      csv.flush();
    }
    points.push_back(std::move(r));
    if (o.stop_p99_ns && points.back().latency_ns.quantile(0.99) > *o.stop_p99_ns) {
      fmt::print(stderr, "skyloft-loadgen: p99 above --stop-p99 at {} rps; sweep ends\n", lg::format_rate(o.rates[i]));
      break;
    }
  }
  lg::print_points(points);
  return 0;
}
