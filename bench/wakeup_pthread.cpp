// wakeup_pthread.cpp - skyloft_wakeup's workload (wakeup_workload.hpp) as a plain pthread program: no
// skyloft in it, std::thread + std::mutex + std::condition_variable, so it runs natively or unmodified
// under skyloft-run, where its threads become tasks. bench/posix-real compares the two.
//
// --slice-us asks the kernel for that EEVDF slice (sched_attr.sched_runtime) in every thread of the loop,
// as skyloft-loadgen does for its generator threads (realtime.hpp): the native run with short slices.
// Under skyloft-run the call would only change the worker kernel threads' slices; leave it at 0 there.
//
// Prints one line of key=value fields (parsed by bench/posix-real):
//   matrix_n= work_us= workers= message_threads= slice_us= rps= wake_p50_us= wake_p90_us= wake_p99_us=
//   wake_p999_us= req_p50_us= req_p99_us= samples= window_s=
// Exit 2 for a bad argument, 1 when the slice cannot be set or no request completed.
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "realtime.hpp"
#include "wakeup_workload.hpp"

namespace {

namespace wk = skyloft::bench::wakeup;

struct Options {
  int workers = 16;
  int message_threads = 2;
  double seconds = 2;
  double warmup_ms = 300;
  double work_us = 1000;
  std::size_t matrix_n = 0;  // 0: calibrate to work_us
  unsigned slice_us = 0;     // 0: the kernel's default slice
};

constexpr const char* kUsage =
    "usage: skyloft_wakeup_pthread [options]\n"
    "  --workers N           worker threads (default 16)\n"
    "  --message-threads M   message threads (default 2)\n"
    "  --seconds S           measured seconds (default 2)\n"
    "  --warmup-ms MS        warm-up, samples dropped (default 300)\n"
    "  --work-us US          calibrate one request's multiply to this (default 1000)\n"
    "  --matrix-n N          use N x N matrices instead of calibrating (to repeat another run's work)\n"
    "  --slice-us US         ask the kernel for a US microsecond slice in every thread (100..100000)\n";

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "skyloft_wakeup_pthread: %s\n%s", why.c_str(), kUsage);
  std::exit(2);
}

double number(const char* flag, const char* text, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || errno != 0) usage(std::string(flag) + ": '" + text + "' is not a number");
  if (v < lo || v > hi) {
    usage(std::string(flag) + ": " + text + " is out of range (" + std::to_string(static_cast<long>(lo)) + ".." +
          std::to_string(static_cast<long>(hi)) + ")");
  }
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) usage(a.rfind("--", 0) == 0 ? a + " needs a value" : "unknown argument '" + a + "'");
    const char* v = argv[++i];
    if (a == "--workers") o.workers = static_cast<int>(number("--workers", v, 1, 4096));
    else if (a == "--message-threads") o.message_threads = static_cast<int>(number("--message-threads", v, 1, 64));
    else if (a == "--seconds") o.seconds = number("--seconds", v, 0.01, 3600);
    else if (a == "--warmup-ms") o.warmup_ms = number("--warmup-ms", v, 0, 600000);
    else if (a == "--work-us") o.work_us = number("--work-us", v, 10, 1e6);
    else if (a == "--matrix-n") o.matrix_n = static_cast<std::size_t>(number("--matrix-n", v, 4, 4096));
    else if (a == "--slice-us") o.slice_us = static_cast<unsigned>(number("--slice-us", v, 100, 100000));
    else usage("unknown argument '" + a + "'");
  }
  o.message_threads = std::min(o.message_threads, o.workers);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::size_t n = o.matrix_n;
  double work_us = 0;
  if (n == 0) {
    std::tie(n, work_us) = wk::calibrate(o.work_us);
  } else {
    work_us = wk::time_multiply_us(n, 15, false);
  }

  const auto reserve = static_cast<std::size_t>((o.seconds + 1) * 4e6 / o.work_us / o.workers) + 64;
  using C = wk::Cell<std::mutex, std::condition_variable>;
  C cell(o.workers, o.message_threads, n, nullptr, reserve);

  // A thread that cannot get its slice says so once; the run goes on and fails at the end.
  std::mutex slice_error_mutex;
  std::string slice_error;  // protected by slice_error_mutex
  auto set_slice = [&] {
    if (o.slice_us == 0) return;
    std::string e = skyloft::loadgen::set_generator_slice(o.slice_us);
    if (!e.empty()) {
      std::lock_guard g(slice_error_mutex);
      slice_error = e;
    }
  };
  std::vector<std::thread> threads;
  for (auto& m : cell.msgs) threads.emplace_back([&set_slice, p = m.get()] { set_slice(), p->run(); });
  for (auto& w : cell.workers) threads.emplace_back([&set_slice, &cell, p = w.get()] { set_slice(), p->run(cell.sh); });
  const double window = cell.drive(o.warmup_ms / 1e3, o.seconds, [](bool) {});
  for (auto& t : threads) t.join();
  const wk::Measured r = cell.collect(window);

  std::printf("matrix_n=%zu work_us=%.0f workers=%d message_threads=%d slice_us=%u rps=%.1f wake_p50_us=%.1f "
              "wake_p90_us=%.1f wake_p99_us=%.1f wake_p999_us=%.1f req_p50_us=%.1f req_p99_us=%.1f samples=%zu "
              "window_s=%.3f\n",
              n, work_us, o.workers, o.message_threads, o.slice_us, r.rps, r.wake.p50, r.wake.p90, r.wake.p99,
              r.wake.p999, r.req.p50, r.req.p99, r.wake_samples, r.window_s);
  if (!slice_error.empty()) {
    std::fprintf(stderr, "skyloft_wakeup_pthread: %s\n", slice_error.c_str());
    return 1;
  }
  if (r.requests == 0) {
    std::fprintf(stderr, "skyloft_wakeup_pthread: no request completed\n");
    return 1;
  }
  return 0;
}
