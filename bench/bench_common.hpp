// bench_common.hpp - helpers shared by the benchmark programs (micro/, preempt_cost/, wakeup/):
// command-line parsing, the machine description printed at the top of every report, clocks and pinning,
// simple statistics, other processes' CPU share, the aligned text table, CSV output and PNG plots.
// The demo (examples/) uses it too.
//
// Header-only; everything lives in namespace skyloft::bench. The functions only factor out what the
// programs did identically before, so the output of the programs does not depend on this file.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>

#include "skyloft/skyloft.hpp"

namespace skyloft::bench {

// ---------------------------------------------------------------------------------------------------------
// Command line

// A `--flag VALUE` / `--flag=VALUE` command-line walker. `program` prefixes error messages; `usage_text`
// is a fmt format string whose one `{}` is replaced by argv[0] (write literal braces as `{{` `}}`).
//
//   Args args(argc, argv, "skyloft_x", kUsage);
//   while (args.next()) {
//     if (args.is("--runs")) runs = static_cast<int>(args.long_value("--runs", 1, 1000));
//     else args.usage("unknown argument '" + args.arg() + "'");
//   }
class Args {
 public:
  Args(int argc, char** argv, const char* program, std::string_view usage_text)
      : argc_(argc), argv_(argv), program_(program), usage_text_(usage_text) {}

  // Prints "<program>: <error>" (when error is not empty) and the usage text to stderr, then exits with
  // status 0 (no error: --help) or 2.
  [[noreturn]] void usage(const std::string& error = "") const {
    if (!error.empty()) fmt::print(stderr, "{}: {}\n", program_, error);
    fmt::print(stderr, fmt::runtime(usage_text_), argv_[0]);
    std::exit(error.empty() ? 0 : 2);
  }

  // Advances to the next argument; false when there is none. --help and -h print the usage and exit 0.
  bool next() {
    if (i_ + 1 >= argc_) return false;
    a_ = argv_[++i_];
    if (a_ == "--help" || a_ == "-h") usage();
    return true;
  }

  // The current argument, as written.
  const std::string& arg() const { return a_; }

  // Whether the current argument is `flag` or `flag=...`.
  bool is(const char* flag) const {
    std::string f = flag;
    return a_ == f || a_.rfind(f + "=", 0) == 0;
  }

  // The current flag's value: after '=' when there is one, else the next argument (consumed).
  std::string value() {
    auto eq = a_.find('=');
    if (eq != std::string::npos) return a_.substr(eq + 1);
    if (i_ + 1 >= argc_) usage(a_ + " needs a value");
    return argv_[++i_];
  }

  // `v` as an integer in [lo, hi] (the whole string must be the number), or a usage error naming `flag`.
  long parse_long(const std::string& flag, const std::string& v, long lo, long hi) const {
    try {
      std::size_t pos = 0;
      long x = std::stol(v, &pos);
      if (pos != v.size() || x < lo || x > hi) throw std::out_of_range("range");
      return x;
    } catch (const std::exception&) {
      usage(fmt::format("{} needs an integer in [{}, {}], got '{}'", flag, lo, hi, v));
    }
  }

  // `v` as a number in [lo, hi] (the whole string must be the number), or a usage error naming `flag`.
  double parse_double(const std::string& flag, const std::string& v, double lo, double hi) const {
    try {
      std::size_t pos = 0;
      double x = std::stod(v, &pos);
      if (pos != v.size() || !(x >= lo && x <= hi)) throw std::out_of_range("range");
      return x;
    } catch (const std::exception&) {
      usage(fmt::format("{} needs a number in [{}, {}], got '{}'", flag, lo, hi, v));
    }
  }

  // value() parsed by parse_long / parse_double.
  long long_value(const std::string& flag, long lo, long hi) { return parse_long(flag, value(), lo, hi); }
  double double_value(const std::string& flag, double lo, double hi) { return parse_double(flag, value(), lo, hi); }

 private:
  int argc_;
  char** argv_;
  const char* program_;
  std::string_view usage_text_;
  int i_ = 0;
  std::string a_;
};

// The flags of a repeated-runs benchmark (micro, preempt_cost), parsed alike. A program's Options derive
// from this, passing their defaults for runs, csv and timeout_s.
struct RunOptions {
  bool quick = false;     // --quick: CI smoke run
  int runs;               // --runs N, in [1, 1000]
  bool runs_set = false;  // whether --runs was given (--quick lowers only defaults)
  int core = -1;          // --core C, in [0, 4095] (-1: not given)
  std::string csv;        // --csv PATH
  std::string filter;     // --filter SUBSTR
  int timeout_s;          // --timeout S, in [1, 86400]

  RunOptions(int default_runs, std::string default_csv, int default_timeout_s)
      : runs(default_runs), csv(std::move(default_csv)), timeout_s(default_timeout_s) {}
};

// Parses the current argument into `o` when it is one of RunOptions' flags; false when it is not.
inline bool parse_run_option(Args& args, RunOptions& o) {
  if (args.arg() == "--quick") {
    o.quick = true;
  } else if (args.is("--runs")) {
    o.runs = static_cast<int>(args.long_value("--runs", 1, 1000));
    o.runs_set = true;
  } else if (args.is("--core")) {
    o.core = static_cast<int>(args.long_value("--core", 0, 4095));
  } else if (args.is("--csv")) {
    o.csv = args.value();
  } else if (args.is("--filter")) {
    o.filter = args.value();
  } else if (args.is("--timeout")) {
    o.timeout_s = static_cast<int>(args.long_value("--timeout", 1, 86400));
  } else {
    return false;
  }
  return true;
}

// Walks all arguments: RunOptions' flags go to parse_run_option, the others to `other()`, which returns
// whether it knew the current argument; an argument that neither knows is a usage error.
template <class Other>
void parse_run_args(Args& args, RunOptions& o, Other&& other) {
  while (args.next()) {
    if (!parse_run_option(args, o) && !other()) args.usage("unknown argument '" + args.arg() + "'");
  }
}

// ---------------------------------------------------------------------------------------------------------
// Machine description

// The "model name" of the first CPU in /proc/cpuinfo, or "unknown".
inline std::string read_cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto c = line.find(':');
      if (c != std::string::npos) {
        auto v = line.substr(c + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        return v;
      }
    }
  }
  return "unknown";
}

// "sysname release machine" from uname(2), or "unknown".
inline std::string kernel_string() {
  utsname u{};
  if (uname(&u) != 0) return "unknown";
  return fmt::format("{} {} {}", u.sysname, u.release, u.machine);
}

// Prints the "machine" and "compiler" lines of a report header:
//   "  machine : nproc N (allowed cores C), CPU M, kernel K<extra>"
//   "  compiler: g++ V, NDEBUG"  (or a warning when assertions are on)
inline void print_machine(const std::string& allowed_cores, const std::string& extra = "") {
  fmt::print("  machine : nproc {} (allowed cores {}), CPU {}, kernel {}{}\n", std::thread::hardware_concurrency(),
             allowed_cores, read_cpu_model(), kernel_string(), extra);
  fmt::print("  compiler: g++ {}{}\n", __VERSION__,
#ifdef NDEBUG
             ", NDEBUG"
#else
             ", assertions ON (not a release build?)"
#endif
  );
}

// Reads the process's allowed cores into `allowed` and settles `core` (-1: the last allowed core). When
// there are none, or `core` is not one of them, prints "<program>: no allowed cores" or "<program>: " +
// not_allowed (a fmt format string with two {}: core and the allowed-core list) to stderr and returns false.
inline bool resolve_core(const char* program, std::vector<int>& allowed, int& core, const char* not_allowed) {
  allowed = skyloft::allowed_cores();
  if (allowed.empty()) {
    fmt::print(stderr, "{}: no allowed cores\n", program);
    return false;
  }
  if (core < 0) core = allowed.back();
  if (std::find(allowed.begin(), allowed.end(), core) == allowed.end()) {
    fmt::print(stderr, "{}: {}", program, fmt::format(fmt::runtime(not_allowed), core, skyloft::format_core_list(allowed)));
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Clocks and threads

// steady_clock now, in nanoseconds.
inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// Pins the calling thread to one core; false when the kernel refuses.
inline bool pin_self(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

// Keeps the compiler from optimizing `value` (and the work that produced it) away.
template <class T>
inline void do_not_optimize(T const& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

// ---------------------------------------------------------------------------------------------------------
// Watchdog: a runtime bug that hangs a benchmark should produce a diagnosis, not a silent CI timeout.

// The measuring code names what it runs in `current` and bumps `progress` after every run; run() (the body
// of the watchdog thread) aborts the process with status 3, after printing `message` and dumping the
// current skyloft Runtime to stderr, when progress stalls for more than `timeout_s` seconds. `message` is a
// fmt format string with two {}: current and timeout_s. Setting `stop` ends run() within one `poll`.
struct ProgressWatchdog {
  std::atomic<const char*> current{"startup"};
  std::atomic<std::uint64_t> progress{0};
  std::atomic<bool> stop{false};

  void run(std::chrono::milliseconds poll, int timeout_s, const char* message) {
    std::uint64_t last = progress.load();
    auto last_change = std::chrono::steady_clock::now();
    while (!stop.load()) {
      std::this_thread::sleep_for(poll);
      std::uint64_t p = progress.load();
      auto t = std::chrono::steady_clock::now();
      if (p != last) {
        last = p;
        last_change = t;
      } else if (t - last_change > std::chrono::seconds(timeout_s)) {
        fmt::print(stderr, fmt::runtime(message), current.load(), timeout_s);
        if (auto* rt = skyloft::Runtime::current()) rt->dump(stderr);
        std::fflush(stderr);
        std::_Exit(3);
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------------------
// Statistics

// The median of the non-NaN values (mean of the two middle ones for an even count); NaN when none.
inline double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  std::size_t k = v.size();
  return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

struct Spread {
  double median, min, max;  // NaN when there is no value
};

// median(v) and the min and max of the non-NaN values of v.
inline Spread spread(const std::vector<double>& v) {
  Spread s{median(v), std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  for (double x : v) {
    if (std::isnan(x)) continue;
    if (std::isnan(s.min) || x < s.min) s.min = x;
    if (std::isnan(s.max) || x > s.max) s.max = x;
  }
  return s;
}

// The element at index floor(q * n) (at most n - 1) of a sorted, non-empty vector: for q = 0.5 the upper
// middle element.
template <class T>
inline T at_index_quantile(const std::vector<T>& sorted, double q) {
  return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(static_cast<double>(sorted.size()) * q))];
}

// The nearest-rank quantile of a sorted, non-empty vector: the element of rank ceil(q * n), clamped to [1, n].
template <class T>
inline T nearest_rank(const std::vector<T>& sorted, double q) {
  std::size_t rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

// ---------------------------------------------------------------------------------------------------------
// Other processes: on a shared machine a run is disturbed; /proc/stat tells how much CPU others used.

struct CpuSnap {
  std::uint64_t busy = 0, total = 0, self = 0;  // clock ticks (USER_HZ)
  bool ok = false;
};

// Machine-wide busy and total time (/proc/stat) and this process's own CPU time (/proc/self/stat).
inline CpuSnap cpu_snap() {
  CpuSnap s;
  std::ifstream st("/proc/stat");
  std::string cpu;
  std::uint64_t v[10] = {};
  if (!(st >> cpu) || cpu != "cpu") return s;
  for (auto& x : v) st >> x;
  // user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user)
  s.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  s.total = s.busy + v[3] + v[4];
  std::ifstream self("/proc/self/stat");
  std::string line;
  std::getline(self, line);
  auto rp = line.rfind(')');
  if (rp == std::string::npos) return s;
  std::istringstream rest(line.substr(rp + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  s.self = utime + stime;
  s.ok = true;
  return s;
}

// Percent of the machine's CPU capacity used by other processes between a and b (-1: unknown).
inline double other_cpu_pct(const CpuSnap& a, const CpuSnap& b) {
  if (!a.ok || !b.ok || b.total <= a.total) return -1;
  double busy = static_cast<double>(b.busy - a.busy);
  double self = static_cast<double>(b.self - a.self);
  return std::max(0.0, 100.0 * (busy - self) / static_cast<double>(b.total - a.total));
}

// Samples other processes' CPU share over `sample` intervals until it is known and below `max_pct`, or
// `max_s` seconds have passed; returns the last sample. `on_busy` runs after each sample that was not quiet.
inline double wait_quiet(double max_s, double max_pct, std::chrono::milliseconds sample,
                         const std::function<void()>& on_busy = {}) {
  const std::uint64_t end = now_ns() + static_cast<std::uint64_t>(max_s * 1e9);
  double pct = -1;
  do {
    CpuSnap a = cpu_snap();
    std::this_thread::sleep_for(sample);
    pct = other_cpu_pct(a, cpu_snap());
    if (pct >= 0 && pct < max_pct) return pct;
    if (on_busy) on_busy();
  } while (now_ns() < end);
  return pct;
}

// ---------------------------------------------------------------------------------------------------------
// Text tables and CSV

// Prints a table: the head, a rule of '-', then the rows. Columns are as wide as their widest cell and two
// spaces apart; column i is left-aligned when left(i), else right-aligned; trailing spaces are cut. A row
// shorter than the head is padded with empty cells.
inline void print_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows,
                        const std::function<bool(std::size_t)>& left) {
  std::vector<std::size_t> w(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) {
    w[i] = head[i].size();
    for (const auto& r : rows) w[i] = std::max(w[i], i < r.size() ? r[i].size() : 0);
  }
  auto line = [&](const std::vector<std::string>& c) {
    std::string s;
    for (std::size_t i = 0; i < head.size(); ++i) {
      const std::string& x = i < c.size() ? c[i] : std::string();
      if (left(i)) s += fmt::format("{:<{}}", x, w[i]);
      else s += fmt::format("{:>{}}", x, w[i]);
      if (i + 1 < head.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    fmt::print("{}\n", s);
  };
  line(head);
  std::size_t total = 0;
  for (auto x : w) total += x + 2;
  fmt::print("{}\n", std::string(total - 2, '-'));
  for (const auto& r : rows) line(r);
}

// print_table with the first `left_cols` columns left-aligned.
inline void print_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows,
                        std::size_t left_cols) {
  print_table(head, rows, [left_cols](std::size_t i) { return i < left_cols; });
}

// Opens `path` for writing (creating its parent directories) and writes the `header` line(s); throws
// std::runtime_error("cannot open <path>") when the file cannot be opened.
inline std::ofstream open_csv(const std::string& path, std::string_view header) {
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p);
  if (!out) throw std::runtime_error("cannot open " + path);
  out << header;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Plots: a Python script drawn with Debian's matplotlib. /usr/bin/python3 on purpose: another python3 that
// comes first on PATH usually lacks Debian's python3-matplotlib.

enum class PlotResult { drawn, skipped, failed };

// Runs `/usr/bin/python3 script args...` (each argument single-quoted) and prints one line saying what
// happened: "<what>: <done_text>", or why it was skipped (no script, no matplotlib) or failed.
inline PlotResult run_plot(const std::string& what, const std::string& script, const std::vector<std::string>& args,
                           const std::string& done_text) {
  if (!std::filesystem::exists(script)) {
    fmt::print("{}: skipped ({} not found)\n", what, script);
    return PlotResult::skipped;
  }
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0) {
    fmt::print("{}: skipped (/usr/bin/python3 has no matplotlib: apt-get install -y python3-matplotlib)\n", what);
    return PlotResult::skipped;
  }
  std::string cmd = "/usr/bin/python3 '" + script + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  std::fflush(stdout);
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    fmt::print("{}: {} failed (status {})\n", what, script, rc);
    return PlotResult::failed;
  }
  fmt::print("{}: {}\n", what, done_text);
  return PlotResult::drawn;
}

}  // namespace skyloft::bench
