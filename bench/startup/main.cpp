// startup - what skyloft-run adds to a program's start-up: a trivial dynamically linked program (a tiny C
// program built here, and /bin/true) started N times natively and N times under skyloft-run, the two
// interleaved so that a drift of the machine hits both alike. Wall time from posix_spawn to waitpid.
// Table on stdout: median [min..max] of each and the difference of the medians; CSV with --csv.
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
    "usage: {} [--runs N] [--csv PATH] [--skyloft-run PATH] [--program PATH]...\n"
    "  Starts each program --runs times (default 30) natively and under skyloft-run, interleaved.\n"
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

std::string cell(const bench::Spread& s) { return fmt::format("{:.2f} [{:.2f}..{:.2f}]", s.median, s.min, s.max); }

}  // namespace

int main(int argc, char** argv) {
  bench::RunOptions opts(30, "", 60);
  std::string skyloft_run = SKYLOFT_RUN_DEFAULT_PATH;
  std::vector<std::string> programs;
  bench::Args args(argc, argv, "skyloft_startup", kUsage);
  bench::parse_run_args(args, opts, [&] {
    if (args.is("--skyloft-run")) skyloft_run = args.value();
    else if (args.is("--program")) programs.push_back(args.value());
    else return false;
    return true;
  });
  if (programs.empty()) programs = {SKYLOFT_STARTUP_TRIVIAL_PATH, "/bin/true"};
  if (opts.quick && !opts.runs_set) opts.runs = 5;

  fmt::print("skyloft_startup: {} runs of each program, native and under skyloft-run, interleaved\n", opts.runs);
  bench::print_machine(skyloft::format_core_list(skyloft::allowed_cores()));
  std::vector<std::vector<std::string>> rows;
  std::string csv = "program,mode,run,ms\n";
  for (const auto& prog : programs) {
    std::vector<double> native, under;
    for (int i = 0; i < opts.runs; ++i) {
      native.push_back(run_ms({prog}));
      under.push_back(run_ms({skyloft_run, "--", prog}));
      csv += fmt::format("{},native,{},{:.3f}\n{},skyloft-run,{},{:.3f}\n", prog, i, native.back(), prog, i, under.back());
    }
    const bench::Spread n = bench::spread(native), u = bench::spread(under);
    const std::string name = prog.substr(prog.rfind('/') + 1);
    rows.push_back({name, cell(n), cell(u), fmt::format("{:+.2f}", u.median - n.median)});
    if (std::isnan(n.median) || std::isnan(u.median)) {
      fmt::print(stderr, "skyloft_startup: {} did not run (or did not exit 0)\n", prog);
    }
  }
  bench::print_table({"program", "native ms", "skyloft-run ms", "added ms"}, rows, 1);
  if (!opts.csv.empty()) bench::open_csv(opts.csv, csv);
  return 0;
}
