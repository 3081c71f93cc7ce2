// multiapp_switch.cpp - inter-application switch latency on one core (issue 10, benchmark 7a), next to a raw
// cross-process futex ping-pong on the same core, in the same run. Table on stdout, CSV with --csv, PNG with
// --png (bench/plot_multiapp_switch.py, /usr/bin/python3 + matplotlib).
//
// Raw: two processes pinned to one core hand a shared futex word back and forth (FUTEX_WAIT/FUTEX_WAKE
// without FUTEX_PRIVATE_FLAG, as skyloft's handoff uses); one switch = one hand-over = round trip / 2.
//
// skyloft: a skyloftd managing that one core, two BE applications (forked copies of this program), each
// with one task that yields in a loop and stamps CLOCK_MONOTONIC into shared memory every iteration. With
// both apps wanting the core, the owner's poll point hands it over once its share slice (100 us) is up. A
// task that sees a gap in its own stamps has just got the core back; the switch latency is the time from
// the other app's last stamp to its own first one: the owner's yield through the gate, the handover on
// the core table (publish, post, shared-futex wake), the other worker's wake-up, take and dispatch.
// The waiting app's nudge is not on this path (the owner's own yield reaches the poll point), as the raw
// ping-pong has none.
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench_common.hpp"
#include "skyloft/skyloft.hpp"

namespace {

std::uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

void pin(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  sched_setaffinity(0, sizeof set, &set);
}

constexpr int kMaxSamples = 200'000;

struct Stats {
  double p50 = 0, p99 = 0, mean = 0;
  std::size_t n = 0;
};

Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.p50 = v[v.size() / 2];
  s.p99 = v[static_cast<std::size_t>(0.99 * static_cast<double>(v.size() - 1))];
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

// ---- raw futex ping-pong ----

struct alignas(64) RawShared {
  std::atomic<std::uint32_t> word{0};
  std::atomic<std::uint32_t> ready{0};
};

void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t v) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAIT, v, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>& w) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// One-way hand-over latency of `rounds` round trips, in ns.
double raw_pingpong(int core, int rounds) {
  auto* sh = static_cast<RawShared*>(mmap(nullptr, sizeof(RawShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  new (sh) RawShared();
  pid_t child = fork();
  if (child == 0) {
    pin(core);
    sh->ready.store(1);
    for (int i = 0; i < rounds; ++i) {
      while (sh->word.load(std::memory_order_acquire) != 1) futex_wait(sh->word, 0);
      sh->word.store(0, std::memory_order_release);
      futex_wake(sh->word);
    }
    _exit(0);
  }
  pin(core);
  while (sh->ready.load() == 0) sched_yield();
  const std::uint64_t t0 = mono_ns();
  for (int i = 0; i < rounds; ++i) {
    sh->word.store(1, std::memory_order_release);
    futex_wake(sh->word);
    while (sh->word.load(std::memory_order_acquire) != 0) futex_wait(sh->word, 1);
  }
  const std::uint64_t t1 = mono_ns();
  waitpid(child, nullptr, 0);
  munmap(sh, sizeof(RawShared));
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int c : skyloft::allowed_cores()) CPU_SET(c, &all);
  sched_setaffinity(0, sizeof all, &all);
  return static_cast<double>(t1 - t0) / (2.0 * rounds);
}

// ---- two skyloft apps on one core ----

struct alignas(64) AppShared {
  std::atomic<std::uint64_t> last_ns{0};  // the app's task's latest stamp
  std::atomic<std::uint32_t> nsamples{0};
  std::atomic<std::uint32_t> done{0};
  float samples_us[kMaxSamples];
};

int app_child(AppShared* self, AppShared* other, const std::string& socket, const char* name, int ms) {
  skyloft::Config cfg;
  cfg.daemon = socket;
  cfg.app_class = "be";
  cfg.app_name = name;
  cfg.share_slice_us = 100;
  try {
    skyloft::Runtime rt(cfg);
    std::atomic<bool> stop{false};
    skyloft::JoinHandle t = skyloft::spawn([&] {
      std::uint64_t prev = mono_ns();
      std::uint32_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const std::uint64_t now = mono_ns();
        if (now - prev > 3'000) {  // we were off the core: the other app ran in between
          const std::uint64_t o = other->last_ns.load(std::memory_order_acquire);
          if (o > prev && o < now && n < kMaxSamples) self->samples_us[n++] = static_cast<float>(now - o) / 1000.0f;
        }
        prev = now;
        self->last_ns.store(now, std::memory_order_release);
        skyloft::this_task::yield();  // a scheduling decision: the poll point sees the other app waiting
      }
      self->nsamples.store(n);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    stop.store(true);
    t.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  self->done.store(1);
  return 0;
}

std::vector<double> skyloft_switches(const std::string& skyloftd, int core, int ms, std::uint64_t* handoffs_out) {
  char dir[] = "/tmp/skyloft-switch-XXXXXX";
  if (mkdtemp(dir) == nullptr) return {};
  const std::string socket = std::string(dir) + "/skyloftd.sock";
  pid_t d = fork();
  if (d == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    const std::string cores = std::to_string(core);
    execl(skyloftd.c_str(), skyloftd.c_str(), "--cores", cores.c_str(), "--socket", socket.c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 1000 && access(socket.c_str(), F_OK) != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const std::size_t bytes = 2 * sizeof(AppShared);
  auto* sh = static_cast<AppShared*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  new (&sh[0]) AppShared();
  new (&sh[1]) AppShared();
  pid_t a = fork();
  if (a == 0) _exit(app_child(&sh[0], &sh[1], socket, "switch-a", ms));
  pid_t b = fork();
  if (b == 0) _exit(app_child(&sh[1], &sh[0], socket, "switch-b", ms));
  waitpid(a, nullptr, 0);
  waitpid(b, nullptr, 0);
  kill(d, SIGTERM);
  waitpid(d, nullptr, 0);
  rmdir(dir);
  std::vector<double> v;
  for (int k = 0; k < 2; ++k) {
    for (std::uint32_t i = 0; i < sh[k].nsamples.load(); ++i) v.push_back(sh[k].samples_us[i]);
  }
  *handoffs_out = v.size();
  munmap(sh, bytes);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string skyloftd = SKYLOFTD_DEFAULT_PATH;
  std::string csv, png;
  int runs = 3, ms = 500, core = skyloft::allowed_cores().back();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "multiapp_switch: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--skyloftd") skyloftd = value();
    else if (a == "--csv") csv = value();
    else if (a == "--png") png = value();
    else if (a == "--runs") runs = std::atoi(value().c_str());
    else if (a == "--ms") ms = std::atoi(value().c_str());
    else if (a == "--core") core = std::atoi(value().c_str());
    else {
      std::fprintf(stderr, "usage: skyloft_multiapp_switch [--runs N] [--ms MS] [--core C] [--skyloftd PATH] [--csv PATH [--png PATH]]\n");
      return 2;
    }
  }
  if (!png.empty() && csv.empty()) {
    std::fprintf(stderr, "multiapp_switch: --png draws from the CSV: give --csv PATH too\n");
    return 2;
  }
  if (runs < 1 || ms < 50) {
    std::fprintf(stderr, "multiapp_switch: --runs must be >= 1 and --ms >= 50\n");
    return 2;
  }
  std::printf("inter-app switch on one core (core %d), %d runs of %d ms; one machine, loaded by others: indicative\n\n",
              core, runs, ms);
  std::printf("%-4s %22s %30s %12s\n", "run", "raw futex one-way (us)", "skyloft inter-app p50/p99 (us)", "switches");
  std::vector<double> raws, p50s, p99s;
  std::ofstream out;
  if (!csv.empty()) {
    try {
      out = skyloft::bench::open_csv(
          csv, "run,raw_futex_oneway_us,skyloft_switch_p50_us,skyloft_switch_p99_us,skyloft_switch_mean_us,switches\n");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "multiapp_switch: %s\n", e.what());
      return 2;
    }
  }
  for (int r = 0; r < runs; ++r) {
    const double raw = raw_pingpong(core, 20'000) / 1000.0;
    std::uint64_t n = 0;
    Stats s = stats_of(skyloft_switches(skyloftd, core, ms, &n));
    std::printf("%-4d %22.2f %19.2f / %8.2f %12zu\n", r + 1, raw, s.p50, s.p99, s.n);
    if (out.is_open()) out << fmt::format("{},{:.3f},{:.3f},{:.3f},{:.3f},{}\n", r + 1, raw, s.p50, s.p99, s.mean, s.n);
    raws.push_back(raw);
    p50s.push_back(s.p50);
    p99s.push_back(s.p99);
  }
  auto med = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double mr = med(raws), m50 = med(p50s);
  std::printf("%-4s %22.2f %19.2f / %8.2f\n", "med", mr, m50, med(p99s));
  std::printf("\nratio skyloft p50 / raw futex: %.2fx (target <= 1.5x)\n", m50 / mr);
  out.close();  // flushed before the plot reads it
  if (!png.empty()) {
    const auto drawn = skyloft::bench::run_plot("plot", SKYLOFT_SWITCH_PLOT_SCRIPT, {csv, png}, png);
    if (drawn == skyloft::bench::PlotResult::failed) return 1;
  }
  return 0;
}
