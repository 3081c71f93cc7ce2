// million.cpp - a million live sleeping tasks: what each costs and how fast they are spawned, for skyloft
// tasks, Boost.Fiber fibers and Go goroutines, measured in the same run.
//
// Each system holds N live tasks (default 1,000,000) that each bump a started counter and then block: a
// skyloft task on a skyloft::WaitGroup, a fiber on a boost::fibers::condition_variable, a goroutine on a
// sync.WaitGroup. Per run and system:
//   spawn rate   N / (time from just before the first spawn until every task has started and blocked)
//   RSS, virt    /proc/self/statm deltas over the same interval, divided by N (the runtime's fixed costs,
//                such as worker threads, are paid before the first reading)
//   teardown     release all N at once until every task has returned
// Each measurement runs in a fresh process (skyloft and Boost in a forked child, Go as its own program,
// bench/go/million.go), so no run reuses memory an earlier one left in a heap.
//
// The contenders, each at the configuration meant for many small tasks:
//   skyloft      fifo policy on every allowed core, guardless stacks (Config::stack_guard = false) of
//                --stack bytes (default 2 KiB) carved from shared slabs; spawned by one task
//   Boost.Fiber  round_robin on one thread (Boost's fibers do not migrate by default), fixedsize_stack
//                (malloc'd) of --boost-stack bytes, default 16 KiB: with 2, 4 or 8 KiB Boost 1.74's fibers
//                corrupt the heap here (their context record and frames do not fit), 12 KiB is the smallest
//                that ran
//   Go           GOMAXPROCS = the allowed cores; goroutines start with 2 KiB stacks that grow on demand
//
// Usage: skyloft_million [--quick] [--tasks N] [--runs N] [--stack BYTES] [--boost-stack BYTES] [--go PATH]
//                        [--csv PATH] [--filter SUBSTR] [--timeout S]
// --quick: 20,000 tasks (CI). The table shows the median over the runs and [min..max].
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <boost/fiber/all.hpp>

#include "bench_common.hpp"

namespace {

namespace bench = skyloft::bench;

#ifndef SKYLOFT_MILLION_GO
#define SKYLOFT_MILLION_GO ""
#endif

constexpr const char* kUsage =
    "usage: {} [--quick] [--tasks N] [--runs N] [--stack BYTES] [--boost-stack BYTES] [--go PATH] [--csv PATH]\n"
    "          [--filter SUBSTR] [--timeout S]\n"
    "  holds N live sleeping tasks in skyloft, Boost.Fiber and Go; reports bytes per task (RSS, virtual),\n"
    "  spawn rate and teardown time. --quick: 20000 tasks. --filter: only systems whose name contains it\n"
    "  (skyloft, boost, go). --go: the Go program (bench/go/million.go, built with the benchmarks).\n";

struct Options : bench::RunOptions {
  long tasks = 1'000'000;
  bool tasks_set = false;
  std::size_t stack = skyloft::kMinGuardlessStackSize;
  std::size_t boost_stack = 16 * 1024;
  std::string go = SKYLOFT_MILLION_GO;
  Options() : RunOptions(3, "results/million.csv", 600) {}
};

// One system's measurement in one run.
struct Sample {
  bool ok = false;
  std::string error;
  double spawn_s = 0, rss_bytes = 0, virt_bytes = 0, teardown_s = 0;
};

struct Statm {
  double virt = 0, rss = 0;  // bytes
};

Statm read_statm() {
  Statm s;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long long virt = 0, rss = 0;
    if (std::fscanf(f, "%llu %llu", &virt, &rss) == 2) {
      const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
      s.virt = static_cast<double>(virt) * page;
      s.rss = static_cast<double>(rss) * page;
    }
    std::fclose(f);
  }
  return s;
}

double seconds_between(std::uint64_t a, std::uint64_t b) { return static_cast<double>(b - a) / 1e9; }

// ---- the three workloads ----

// Runs the tasks' path once on full stacks, so that any lazily bound library function on it is bound
// (the dynamic loader's resolver takes ~3.5 KiB of stack: more than a 2 KiB stack has).
void warm_up_skyloft() {
  skyloft::SpawnOptions big;
  big.guard = skyloft::StackGuard::on;
  skyloft::WaitGroup release(1), finished(4);
  for (int i = 0; i < 4; ++i) {
    skyloft::spawn([&] {
      release.wait();
      finished.done();
    }, big).detach();
  }
  skyloft::this_task::yield();
  release.done();
  finished.wait();
}

Sample run_skyloft(std::size_t n, std::size_t stack) {
  skyloft::Config cfg;
  cfg.policy = "fifo";
  cfg.stack_guard = false;
  cfg.stack_size = stack;
  skyloft::Runtime rt(cfg);
  Sample r;
  std::atomic<std::size_t> started{0};
  skyloft::WaitGroup release(1);
  skyloft::WaitGroup finished(n);
  skyloft::SpawnOptions driver;  // the spawning task itself reads /proc: a full guarded stack
  driver.guard = skyloft::StackGuard::on;
  driver.stack_size = 256 * 1024;
  skyloft::spawn(
      [&] {
        warm_up_skyloft();
        const Statm s0 = read_statm();
        const std::uint64_t t0 = bench::now_ns();
        for (std::size_t i = 0; i < n; ++i) {
          skyloft::spawn([&] {
            started.fetch_add(1, std::memory_order_relaxed);
            release.wait();
            finished.done();
          }).detach();
        }
        while (started.load(std::memory_order_relaxed) < n) skyloft::this_task::yield();
        const std::uint64_t t1 = bench::now_ns();
        const Statm s1 = read_statm();
        release.done();
        finished.wait();
        const std::uint64_t t2 = bench::now_ns();
        r = Sample{true, "", seconds_between(t0, t1), s1.rss - s0.rss, s1.virt - s0.virt, seconds_between(t1, t2)};
      },
      driver)
      .join();
  if (!rt.shutdown().clean()) return Sample{false, "tasks left behind at shutdown"};
  return r;
}

Sample run_boost(std::size_t n, std::size_t stack) {
  boost::fibers::mutex m;
  boost::fibers::condition_variable cv;
  bool released = false;
  std::size_t started = 0, finished = 0;  // one thread: no atomics needed
  auto body = [&] {
    ++started;
    std::unique_lock<boost::fibers::mutex> lock(m);
    cv.wait(lock, [&] { return released; });
    ++finished;
  };
  // The fibers' path once on full stacks (see warm_up_skyloft): Boost's own libraries bind lazily.
  for (int i = 0; i < 4; ++i) boost::fibers::fiber(body).detach();
  while (started < 4) boost::this_fiber::yield();
  {
    std::lock_guard<boost::fibers::mutex> lock(m);
    released = true;
  }
  cv.notify_all();
  while (finished < 4) boost::this_fiber::yield();
  started = finished = 0;
  released = false;
  const Statm s0 = read_statm();
  const std::uint64_t t0 = bench::now_ns();
  for (std::size_t i = 0; i < n; ++i) {
    boost::fibers::fiber(std::allocator_arg, boost::fibers::fixedsize_stack(stack), body).detach();
  }
  while (started < n) boost::this_fiber::yield();
  const std::uint64_t t1 = bench::now_ns();
  const Statm s1 = read_statm();
  {
    std::lock_guard<boost::fibers::mutex> lock(m);
    released = true;
  }
  cv.notify_all();
  while (finished < n) boost::this_fiber::yield();
  const std::uint64_t t2 = bench::now_ns();
  return Sample{true, "", seconds_between(t0, t1), s1.rss - s0.rss, s1.virt - s0.virt, seconds_between(t1, t2)};
}

// How many bytes of its stack a parked skyloft task has touched, from the top (its record, its callable
// and its frames): a task on a fresh 64 KiB guardless stack (zero pages, page-aligned top) notes the
// address of a local and parks; then the zero bytes below that address are counted up to the first
// written one. Returns {WaitGroup::wait, sleep_for}.
Sample touched_by_parked_task() {
  skyloft::Config cfg;
  cfg.cores = skyloft::format_core_list({skyloft::allowed_cores().front()});
  skyloft::Runtime rt(cfg);
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  auto touched = [&](volatile char* local) {
    auto at = reinterpret_cast<std::uintptr_t>(local);
    const std::uintptr_t top = (at / page + 1) * page;
    const char* p = const_cast<const char*>(local) - 32 * 1024;
    while (p < local && *p == 0) ++p;
    return static_cast<double>(top - reinterpret_cast<std::uintptr_t>(p));
  };
  skyloft::SpawnOptions o;
  o.guard = skyloft::StackGuard::off;
  o.stack_size = 64 * 1024;
  std::atomic<volatile char*> where{nullptr};
  Sample r;
  skyloft::WaitGroup release(1);
  auto a = skyloft::spawn([&] {
    volatile char local = 1;
    where = &local;
    release.wait();
  }, o);
  while (where.load() == nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  r.rss_bytes = touched(where.load());
  release.done();
  a.join();
  where = nullptr;
  auto b = skyloft::spawn([&] {
    volatile char local = 1;
    where = &local;
    skyloft::this_task::sleep_for(std::chrono::milliseconds(200));
  }, o);
  while (where.load() == nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  r.virt_bytes = touched(where.load());
  b.join();
  r.ok = true;
  return r;
}

// Parses "key=value" fields of the Go program's output line.
bool parse_field(const std::string& line, const char* key, double& out) {
  const std::string k = std::string(key) + "=";
  std::size_t p = line.find(k);
  if (p == std::string::npos || (p > 0 && line[p - 1] != ' ')) return false;
  try {
    out = std::stod(line.substr(p + k.size()));
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

Sample run_go(const std::string& program, std::size_t n, std::size_t procs, int timeout_s) {
  if (program.empty()) return Sample{false, "n/a: Go was not found when the benchmarks were built"};
  if (access(program.c_str(), X_OK) != 0) return Sample{false, "n/a: cannot run " + program};
  const std::string cmd = fmt::format("timeout {} '{}' -tasks {} -procs {} 2>&1", timeout_s, program, n, procs);
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return Sample{false, fmt::format("popen failed: {}", std::strerror(errno))};
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  Sample r;
  if (status != 0 || !parse_field(out, "spawn_s", r.spawn_s) || !parse_field(out, "rss_bytes", r.rss_bytes) ||
      !parse_field(out, "virt_bytes", r.virt_bytes) || !parse_field(out, "teardown_s", r.teardown_s)) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return Sample{false, fmt::format("Go program failed (status {}): {}", status, out)};
  }
  r.ok = true;
  return r;
}

// Runs `fn` in a forked child (a fresh heap and address space) and reads its Sample back through a pipe.
template <class F>
Sample in_child(F&& fn, int timeout_s) {
  int fds[2];
  if (pipe(fds) != 0) return Sample{false, fmt::format("pipe failed: {}", std::strerror(errno))};
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return Sample{false, fmt::format("fork failed: {}", std::strerror(errno))};
  if (pid == 0) {
    close(fds[0]);
    alarm(static_cast<unsigned>(timeout_s));
    Sample s;
    try {
      s = fn();
    } catch (const std::exception& e) {
      s = Sample{false, e.what()};
    }
    std::string msg = s.ok ? fmt::format("ok {} {} {} {}\n", s.spawn_s, s.rss_bytes, s.virt_bytes, s.teardown_s)
                           : "error " + s.error + "\n";
    if (write(fds[1], msg.data(), msg.size()) < 0) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t k; (k = read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<std::size_t>(k));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  Sample s;
  if (msg.rfind("ok ", 0) == 0) {
    s.ok = std::sscanf(msg.c_str() + 3, "%lf %lf %lf %lf", &s.spawn_s, &s.rss_bytes, &s.virt_bytes, &s.teardown_s) == 4;
    if (!s.ok) s.error = "unreadable result: " + msg;
  } else if (msg.rfind("error ", 0) == 0) {
    s.error = msg.substr(6, msg.size() - 7);
  } else if (WIFSIGNALED(status)) {
    s.error = fmt::format("child died of signal {} ({}){}", WTERMSIG(status), strsignal(WTERMSIG(status)),
                          WTERMSIG(status) == SIGALRM ? ": timed out" : "");
  } else {
    s.error = fmt::format("child exited with status {}", WEXITSTATUS(status));
  }
  return s;
}

struct System {
  const char* name;
  std::string stack;
  std::vector<Sample> samples;
};

std::string cell(const std::vector<Sample>& samples, double (*value)(const Sample&), const char* fmt_str) {
  std::vector<double> v;
  for (const auto& s : samples)
    if (s.ok) v.push_back(value(s));
  if (v.empty()) return "-";
  bench::Spread sp = bench::spread(v);
  return fmt::format(fmt::runtime(std::string(fmt_str) + " [" + fmt_str + ".." + fmt_str + "]"), sp.median, sp.min,
                     sp.max);
}

double median_of(const std::vector<Sample>& samples, double (*value)(const Sample&)) {
  std::vector<double> v;
  for (const auto& s : samples)
    if (s.ok) v.push_back(value(s));
  return bench::median(v);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bench::Args args(argc, argv, "skyloft_million", kUsage);
  bench::parse_run_args(args, o, [&] {
    if (args.is("--tasks")) {
      o.tasks = args.long_value("--tasks", 1, 100'000'000);
      o.tasks_set = true;
    } else if (args.is("--stack")) {
      o.stack = static_cast<std::size_t>(args.long_value("--stack", static_cast<long>(skyloft::kMinGuardlessStackSize),
                                                          static_cast<long>(skyloft::kMaxStackSize)));
    } else if (args.is("--boost-stack")) {
      o.boost_stack = static_cast<std::size_t>(args.long_value("--boost-stack", 4096, 1L << 30));
    } else if (args.is("--go")) {
      o.go = args.value();
    } else {
      return false;
    }
    return true;
  });
  if (o.quick && !o.tasks_set) o.tasks = 20'000;
  const std::size_t n = static_cast<std::size_t>(o.tasks);
  const std::vector<int> cores = skyloft::allowed_cores();
  if (cores.empty()) {
    fmt::print(stderr, "skyloft_million: no allowed cores\n");
    return 2;
  }
  auto selected = [&](const char* name) { return o.filter.empty() || std::string(name).find(o.filter) != std::string::npos; };

  fmt::print("skyloft_million: {} live sleeping tasks per system, {} runs, each in a fresh process\n", n, o.runs);
  bench::print_machine(skyloft::format_core_list(cores));
  fmt::print("  skyloft: fifo on {} workers, guardless {}-byte stacks; Boost.Fiber: round_robin on 1 thread, "
             "fixedsize_stack {} bytes; Go: GOMAXPROCS {}, {}\n",
             cores.size(), o.stack, o.boost_stack, cores.size(), o.go.empty() ? "not built" : o.go);

  std::vector<System> systems = {{"skyloft", fmt::format("{} B guardless", o.stack), {}},
                                 {"boost.fiber", fmt::format("{} B malloc", o.boost_stack), {}},
                                 {"go", "2 KiB, grows", {}}};
  const bench::CpuSnap before = bench::cpu_snap();
  for (int run = 0; run < o.runs; ++run) {
    for (auto& sys : systems) {
      if (!selected(sys.name)) continue;
      const std::string name = sys.name;
      Sample s;
      if (name == "skyloft") s = in_child([&] { return run_skyloft(n, o.stack); }, o.timeout_s);
      else if (name == "boost.fiber") s = in_child([&] { return run_boost(n, o.boost_stack); }, o.timeout_s);
      else s = run_go(o.go, n, cores.size(), o.timeout_s);
      if (!s.ok) fmt::print(stderr, "skyloft_million: {} run {}: {}\n", sys.name, run + 1, s.error);
      sys.samples.push_back(s);
    }
  }
  const double other = bench::other_cpu_pct(before, bench::cpu_snap());
  const Sample touch = in_child([] { return touched_by_parked_task(); }, o.timeout_s);

  auto rss = [](const Sample& s) { return s.rss_bytes; };
  auto virt = [](const Sample& s) { return s.virt_bytes; };
  auto rate = [](const Sample& s) { return 1.0 / s.spawn_s; };  // per task; scaled below
  std::vector<std::vector<std::string>> rows;
  for (const auto& sys : systems) {
    if (!selected(sys.name)) continue;
    std::vector<Sample> per_task;  // the same samples, divided by n
    for (Sample s : sys.samples) {
      s.rss_bytes /= static_cast<double>(n);
      s.virt_bytes /= static_cast<double>(n);
      s.spawn_s /= static_cast<double>(n) / 1e6;  // seconds per million
      per_task.push_back(s);
    }
    std::size_t ok = 0;
    for (const auto& s : sys.samples) ok += s.ok;
    rows.push_back({sys.name, sys.stack, cell(per_task, +rss, "{:.0f}"), cell(per_task, +virt, "{:.0f}"),
                    cell(per_task, +rate, "{:.2f}"),
                    cell(sys.samples, +[](const Sample& s) { return s.teardown_s; }, "{:.3f}"),
                    fmt::format("{}/{}", ok, sys.samples.size())});
  }
  fmt::print("\n");
  bench::print_table({"system", "stack", "RSS B/task", "virtual B/task", "spawn M tasks/s", "teardown s", "runs ok"},
                     rows, 2);

  // The targets: bytes per idle task <= Go's, spawn rate >= Go's.
  const auto& sky = systems[0].samples;
  const auto& go = systems[2].samples;
  const double sky_rss = median_of(sky, +rss), go_rss = median_of(go, +rss);
  const double sky_rate = median_of(sky, +rate), go_rate = median_of(go, +rate);
  if (!std::isnan(sky_rss) && !std::isnan(go_rss)) {
    fmt::print("\nskyloft vs Go (medians): RSS per task {:.2f}x Go's (target <= 1: {}), spawn rate {:.2f}x Go's "
               "(target >= 1: {})\n",
               sky_rss / go_rss, sky_rss <= go_rss ? "met" : "NOT met", sky_rate / go_rate,
               sky_rate >= go_rate ? "met" : "NOT met");
  }
  if (touch.ok) {
    fmt::print("a parked skyloft task has touched {:.0f} bytes of its stack in WaitGroup::wait, {:.0f} in "
               "sleep_for (its record and callable included)\n",
               touch.rss_bytes, touch.virt_bytes);
  } else {
    fmt::print(stderr, "skyloft_million: stack touch measurement: {}\n", touch.error);
  }
  if (other >= 0) {
    fmt::print("other processes used {:.0f}% of the machine's CPU during the runs{}\n", other,
               other > 10 ? ": spawn rates and teardown times are disturbed (memory figures are not)" : "");
  }

  try {
    auto csv = bench::open_csv(o.csv, "system,run,tasks,stack_bytes,ok,spawn_s,spawn_per_s,rss_bytes_per_task,"
                                      "virt_bytes_per_task,teardown_s\n");
    for (const auto& sys : systems) {
      for (std::size_t i = 0; i < sys.samples.size(); ++i) {
        const Sample& s = sys.samples[i];
        const double nd = static_cast<double>(n);
        csv << fmt::format("{},{},{},{},{},{:.6f},{:.0f},{:.1f},{:.1f},{:.6f}\n", sys.name, i + 1, n,
                           std::string(sys.name) == "go" ? 2048 : std::string(sys.name) == "skyloft" ? o.stack : o.boost_stack, s.ok ? 1 : 0, s.spawn_s,
                           s.ok ? nd / s.spawn_s : 0.0, s.rss_bytes / nd, s.virt_bytes / nd, s.teardown_s);
      }
    }
    fmt::print("CSV: {}\n", o.csv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_million: {}\n", e.what());
    return 1;
  }
  for (const auto& sys : systems)
    for (const auto& s : sys.samples)
      if (!s.ok && std::string(sys.name) != "go") return 1;  // Go may be missing; the others must work
  return 0;
}
