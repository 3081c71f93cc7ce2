// io_echo.cpp - a loopback TCP echo round trip (64-byte message) between two skyloft tasks, next to the
// same between two blocking kernel threads.
//
// Method: one connection; the client writes 64 bytes and reads them back, `rounds` times, timing each
// round trip with the TSC clock; the server echoes. A run reports the median and p99 round trip; the table
// shows the median over runs with the min..max spread of the run medians. Configurations:
//   threads          two std::threads with blocking sockets (the kernel schedules them)
//   threads 1 core   the same two threads pinned to one core: the strongest thread baseline here (a
//                    hand-over on one core is a run-queue switch, no cross-core wake-up of a halted core)
//   skyloft uring 1w both tasks on one worker: a round trip is two task switches and ring round trips
//   skyloft uring 2w one worker each (default placement over two workers)
//   skyloft epoll 1w the readiness backend, one worker
// The machine is shared (2 cores): medians of repeated short runs, and timings that vary with the load.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_common.hpp"
#include "skyloft/io.hpp"

namespace bench = skyloft::bench;
namespace io = skyloft::io;

namespace {

constexpr std::size_t kMsg = 64;

constexpr std::string_view kUsage =
    "usage: {} [--rounds N] [--runs N] [--quick] [--csv PATH] [--filter SUBSTR] [--timeout S]\n"
    "  Loopback TCP echo round trip: two skyloft tasks vs two blocking threads.\n";

struct Options : bench::RunOptions {
  long rounds = 20000;
  bool rounds_set = false;
  Options() : RunOptions(5, "results/io_echo.csv", 120) {}
};

struct RunResult {
  double median_us = NAN, p99_us = NAN;
};

RunResult summarize(std::vector<double>& rtt_us) {
  std::sort(rtt_us.begin(), rtt_us.end());
  if (rtt_us.empty()) return {};
  return {bench::at_index_quantile(rtt_us, 0.5), bench::at_index_quantile(rtt_us, 0.99)};
}

void nodelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void pin_to(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) throw std::runtime_error("threads: cannot pin to a core");
}

// Two blocking kernel threads; with `core` >= 0 both run there.
RunResult run_threads(long rounds, int core) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 1) != 0 ||
      getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("threads: cannot listen on loopback");
  }
  cpu_set_t before;
  sched_getaffinity(0, sizeof before, &before);
  if (core >= 0) pin_to(core);  // the server thread inherits it
  std::thread server([lfd] {
    int s = accept(lfd, nullptr, nullptr);
    nodelay(s);
    char buf[kMsg];
    for (;;) {
      std::size_t got = 0;
      while (got < kMsg) {
        ssize_t r = read(s, buf + got, kMsg - got);
        if (r <= 0) {
          close(s);
          return;
        }
        got += static_cast<std::size_t>(r);
      }
      if (write(s, buf, kMsg) != static_cast<ssize_t>(kMsg)) break;
    }
    close(s);
  });
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("threads: connect");
  nodelay(c);
  std::vector<double> rtt;
  rtt.reserve(static_cast<std::size_t>(rounds));
  char msg[kMsg] = {1}, back[kMsg];
  for (long i = 0; i < rounds; ++i) {
    const std::uint64_t t0 = skyloft::now_ns();
    if (write(c, msg, kMsg) != static_cast<ssize_t>(kMsg)) throw std::runtime_error("threads: write");
    std::size_t got = 0;
    while (got < kMsg) {
      ssize_t r = read(c, back + got, kMsg - got);
      if (r <= 0) throw std::runtime_error("threads: read");
      got += static_cast<std::size_t>(r);
    }
    rtt.push_back(static_cast<double>(skyloft::now_ns() - t0) / 1000.0);
  }
  close(c);
  server.join();
  close(lfd);
  sched_setaffinity(0, sizeof before, &before);
  return summarize(rtt);
}

// Two skyloft tasks.
RunResult run_skyloft(const std::string& backend, std::size_t workers, long rounds) {
  skyloft::Config cfg;
  cfg.io_backend = backend;
  auto cores = skyloft::allowed_cores();
  cores.resize(std::min(cores.size(), workers));
  cfg.cores = skyloft::format_core_list(cores);
  skyloft::Runtime rt(cfg);
  std::vector<double> rtt;
  rtt.reserve(static_cast<std::size_t>(rounds));
  std::string error;
  rt.block_on([&] {
    auto l = io::TcpListener::bind(io::SocketAddr::loopback(0), 1);
    if (!l) {
      error = "listen: " + l.error().message();
      return;
    }
    const auto addr = l->local_addr().value();
    skyloft::SpawnOptions server_opts;
    server_opts.core = cores.back();  // with two workers, one task per worker
    auto server = skyloft::spawn(
        [&] {
          auto s = l->accept();
          if (!s) return;
          s->set_nodelay(true);
          char buf[kMsg];
          while (s->read_exact(buf, kMsg) && s->write_all(buf, kMsg)) {
          }
        },
        server_opts);
    auto c = io::TcpStream::connect(addr);
    if (!c) {
      error = "connect: " + c.error().message();
      return;
    }
    c->set_nodelay(true);
    char msg[kMsg] = {1}, back[kMsg];
    for (long i = 0; i < rounds; ++i) {
      const std::uint64_t t0 = skyloft::now_ns();
      if (!c->write_all(msg, kMsg) || !c->read_exact(back, kMsg)) {
        error = "echo failed";
        break;
      }
      rtt.push_back(static_cast<double>(skyloft::now_ns() - t0) / 1000.0);
    }
    c->close();
    server.join();
  });
  rt.shutdown();
  if (!error.empty()) throw std::runtime_error("skyloft " + backend + ": " + error);
  return summarize(rtt);
}

struct Case {
  std::string name;
  std::function<RunResult(long)> run;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bench::Args args(argc, argv, "skyloft_io_echo", kUsage);
  bench::parse_run_args(args, o, [&] {
    if (!args.is("--rounds")) return false;
    o.rounds = args.long_value("--rounds", 1, 100'000'000);
    o.rounds_set = true;
    return true;
  });
  if (o.quick) {
    if (!o.runs_set) o.runs = 2;
    if (!o.rounds_set) o.rounds = 2000;
  }
  bench::ProgressWatchdog watchdog;
  std::thread watchdog_thread([&] {
    watchdog.run(std::chrono::milliseconds(200), o.timeout_s, "skyloft_io_echo: no progress in '{}' for {} s\n");
  });
  const auto allowed = skyloft::allowed_cores();
  fmt::print("skyloft_io_echo: loopback TCP echo round trip, {}-byte messages, {} rounds x {} runs\n", kMsg,
             o.rounds, o.runs);
  bench::print_machine(skyloft::format_core_list(allowed),
                       io::uring_available() ? ", io_uring available" : ", io_uring NOT available");

  std::vector<Case> cases = {
      {"threads (blocking)", [](long n) { return run_threads(n, -1); }},
      {"threads 1 core", [&](long n) { return run_threads(n, allowed.back()); }},
      {"skyloft uring 1w", [](long n) { return run_skyloft("uring", 1, n); }},
      {"skyloft uring 2w", [](long n) { return run_skyloft("uring", 2, n); }},
      {"skyloft epoll 1w", [](long n) { return run_skyloft("epoll", 1, n); }},
  };
  std::vector<std::vector<std::string>> rows;
  auto csv = bench::open_csv(o.csv, "config,runs,rounds,median_us,median_min_us,median_max_us,p99_us\n");
  double threads_median = NAN;  // the better of the thread rows run so far (they come first)
  double best_skyloft = NAN;
  for (const auto& c : cases) {
    if (!o.filter.empty() && c.name.find(o.filter) == std::string::npos) continue;
    if (c.name.find("uring") != std::string::npos && !io::uring_available()) continue;
    watchdog.current = c.name.c_str();
    std::vector<double> medians, p99s;
    for (int r = 0; r < o.runs; ++r) {
      RunResult res = c.run(o.rounds);
      medians.push_back(res.median_us);
      p99s.push_back(res.p99_us);
      watchdog.progress.fetch_add(1);
    }
    const bench::Spread m = bench::spread(medians);
    const double p99 = bench::median(p99s);
    if (c.name.rfind("threads", 0) == 0) {
      threads_median = std::isnan(threads_median) ? m.median : std::min(threads_median, m.median);
    } else if (std::isnan(best_skyloft) || m.median < best_skyloft) {
      best_skyloft = m.median;
    }
    rows.push_back({c.name, fmt::format("{:.2f}", m.median), fmt::format("{:.2f}..{:.2f}", m.min, m.max),
                    fmt::format("{:.2f}", p99),
                    std::isnan(threads_median) ? "" : fmt::format("{:.2f}x", threads_median / m.median)});
    csv << fmt::format("{},{},{},{:.3f},{:.3f},{:.3f},{:.3f}\n", c.name, o.runs, o.rounds, m.median, m.min, m.max, p99);
  }
  watchdog.stop = true;
  watchdog_thread.join();
  bench::print_table({"config", "median RTT us", "spread of run medians", "p99 us", "vs best threads so far"}, rows, 1);
  if (!std::isnan(threads_median) && !std::isnan(best_skyloft)) {
    fmt::print("best skyloft {:.2f} us vs best threads {:.2f} us: {:.2f}x (target: skyloft faster: {})\n", best_skyloft,
               threads_median, threads_median / best_skyloft, best_skyloft < threads_median ? "met" : "NOT met");
  }
  fmt::print("CSV: {}\n", o.csv);
  return 0;
}
