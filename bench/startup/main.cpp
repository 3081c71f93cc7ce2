// startup - what skyloft-run adds to a program's start-up: a trivial dynamically linked program (a tiny C
// program built here, and /bin/true) started N times natively and N times under skyloft-run, the two
// interleaved so that a drift of the machine hits both alike. Wall time from posix_spawn to waitpid.
// Table on stdout: median [min..max] of each and the difference of the medians; CSV with --csv. Given more
// than once, --skyloft-run compares builds in one interleaved run (one row per program and build).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../bench_common.hpp"

extern char** environ;

namespace {

namespace bench = skyloft::bench;

constexpr std::string_view kUsage =
    "usage: {} [--runs N] [--csv PATH] [--skyloft-run PATH]... [--program PATH]...\n"
    "  Starts each program --runs times (default 30) natively and under each skyloft-run (default: the one\n"
    "  built with this tool), interleaved.\n"
    "  Programs default to the trivial C program built with this tool and /bin/true.\n";

// One run of argv to its end, in milliseconds; NaN when it could not be started or did not exit 0.
double run_ms(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::uint64_t t0 = bench::now_ns();
  pid_t pid;
  if (posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return NAN;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  const std::uint64_t t1 = bench::now_ns();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return NAN;
  return static_cast<double>(t1 - t0) / 1e6;
}

// The machine's steal and total ticks (/proc/stat): on a VM the host taking CPU time away shows as steal,
// and start-up times then spread far more than the program's work.
std::pair<double, double> steal_ticks() {
  std::ifstream st("/proc/stat");
  std::string cpu;
  double v[8] = {}, total = 0;
  if (!(st >> cpu) || cpu != "cpu") return {0, 0};
  for (auto& x : v) st >> x, total += x;
  return {v[7], total};
}

std::string cell(const bench::Spread& s) { return fmt::format("{:.2f} [{:.2f}..{:.2f}]", s.median, s.min, s.max); }

}  // namespace

int main(int argc, char** argv) {
  bench::RunOptions opts(30, "", 60);
  std::vector<std::string> runners, programs;
  bench::Args args(argc, argv, "skyloft_startup", kUsage);
  bench::parse_run_args(args, opts, [&] {
    if (args.is("--skyloft-run")) runners.push_back(args.value());
    else if (args.is("--program")) programs.push_back(args.value());
    else return false;
    return true;
  });
  if (runners.empty()) runners = {SKYLOFT_RUN_DEFAULT_PATH};
  if (programs.empty()) programs = {SKYLOFT_STARTUP_TRIVIAL_PATH, "/bin/true"};
  if (opts.quick && !opts.runs_set) opts.runs = 5;

  fmt::print("skyloft_startup: {} runs of each program, native and under skyloft-run, interleaved\n", opts.runs);
  bench::print_machine(skyloft::format_core_list(skyloft::allowed_cores()));
  std::vector<std::vector<std::string>> rows;
  const auto steal0 = steal_ticks();
  std::string csv = "program,skyloft_run,run,ms\n";  // skyloft_run "native" for the native runs
  for (const auto& prog : programs) {
    std::vector<double> native;
    std::vector<std::vector<double>> under(runners.size());
    for (int i = 0; i < opts.runs; ++i) {
      native.push_back(run_ms({prog}));
      csv += fmt::format("{},native,{},{:.3f}\n", prog, i, native.back());
      for (std::size_t r = 0; r < runners.size(); ++r) {
        under[r].push_back(run_ms({runners[r], "--", prog}));
        csv += fmt::format("{},{},{},{:.3f}\n", prog, runners[r], i, under[r].back());
      }
    }
    const bench::Spread n = bench::spread(native);
    for (std::size_t r = 0; r < runners.size(); ++r) {
      const bench::Spread u = bench::spread(under[r]);
      std::vector<std::string> row = {prog.substr(prog.rfind('/') + 1)};
      if (runners.size() > 1) row.push_back(runners[r]);
      for (std::string c : {cell(n), cell(u), fmt::format("{:+.2f}", u.median - n.median)}) row.push_back(c);
      rows.push_back(row);
      if (std::isnan(n.median) || std::isnan(u.median)) {
        fmt::print(stderr, "skyloft_startup: {} did not run (or did not exit 0)\n", prog);
      }
    }
  }
  std::vector<std::string> head = {"program", "native ms", "skyloft-run ms", "added ms"};
  if (runners.size() > 1) head.insert(head.begin() + 1, "skyloft-run");
  bench::print_table(head, rows, runners.size() > 1 ? 2 : 1);
  const auto steal1 = steal_ticks();
  if (steal1.second > steal0.second) {
    fmt::print("  steal: {:.0f}% of the machine's CPU time was the host's during the runs\n",
               100.0 * (steal1.first - steal0.first) / (steal1.second - steal0.second));
  }
  if (!opts.csv.empty()) bench::open_csv(opts.csv, csv);
  return 0;
}
