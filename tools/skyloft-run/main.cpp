// main.cpp - skyloft-run: puts libskyloft_preload.so and the runtime settings in the environment and
// becomes the program (exec), so its exit status and fatal signals are the program's own.
//
// Exit status of skyloft-run itself: 2 for a bad command line, 127 when the program is not found, 126 when
// it cannot run under the library; otherwise whatever the program returns.
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "options.hpp"
#include "program.hpp"

namespace {

// The library sits at a fixed place relative to this executable: the install tree's libdir, or the build
// tree's src/posix (both relative paths come from the build).
std::string find_library() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return {};
  self[n] = '\0';
  std::string dir(self);
  dir.resize(dir.rfind('/'));
  for (const char* rel : {SKYLOFT_RUN_INSTALLED_LIBDIR, SKYLOFT_RUN_BUILD_LIBDIR}) {
    std::string candidate = dir + "/" + rel + "/libskyloft_preload.so";
    if (access(candidate.c_str(), R_OK) == 0) {
      char real[PATH_MAX];
      return realpath(candidate.c_str(), real) ? std::string(real) : candidate;
    }
  }
  return {};
}

void set_env(const char* name, const std::optional<std::string>& value) {
  if (value) setenv(name, value->c_str(), 1);
}

}  // namespace

int main(int argc, char** argv) {
  skyloft_run::Options opts;
  try {
    opts = skyloft_run::parse_options(argc, argv);
  } catch (const skyloft_run::UsageError& e) {
    std::fprintf(stderr, "skyloft-run: %s\n", e.what());
    return 2;
  }
  if (opts.help) {
    std::fputs(skyloft_run::usage_text().c_str(), stdout);
    return 0;
  }
  std::string path;
  try {
    path = skyloft_run::resolve_program(opts.program[0]);
  } catch (const skyloft_run::ProgramError& e) {
    std::fprintf(stderr, "skyloft-run: %s\n", e.what());
    return e.status;
  }
  std::string lib = find_library();
  if (lib.empty()) {
    std::fprintf(stderr, "skyloft-run: cannot find libskyloft_preload.so next to this program (looked in %s and %s)\n",
                 SKYLOFT_RUN_INSTALLED_LIBDIR, SKYLOFT_RUN_BUILD_LIBDIR);
    return 127;
  }
  // Ours first, so its pthread symbols win over any other preloaded library's.
  const char* existing = std::getenv("LD_PRELOAD");
  std::string preload = existing && *existing ? lib + ":" + existing : lib;
  setenv("LD_PRELOAD", preload.c_str(), 1);
  set_env("SKYLOFT_POLICY", opts.policy);
  set_env("SKYLOFT_PREEMPT", opts.preempt);
  set_env("SKYLOFT_QUANTUM_US", opts.quantum_us);
  set_env("SKYLOFT_POLICY_PARAMS", opts.policy_params);
  set_env("SKYLOFT_CORES", opts.cores);
  set_env("SKYLOFT_DAEMON", opts.daemon);
  set_env("SKYLOFT_APP_CLASS", opts.app_class);
  set_env("SKYLOFT_WORKER_SLICE_US", opts.worker_slice_us);
  if (opts.task_tls) {
    setenv("SKYLOFT_TASK_TLS", *opts.task_tls == "on" ? "1" : "0", 1);
  } else {
    setenv("SKYLOFT_TASK_TLS", "1", 0);  // on by default; a SKYLOFT_TASK_TLS of the caller's wins
  }

  std::vector<char*> args;
  for (auto& a : opts.program) args.push_back(a.data());
  args.push_back(nullptr);
  execv(path.c_str(), args.data());
  int err = errno;
  std::fprintf(stderr, "skyloft-run: cannot run '%s': %s\n", path.c_str(), std::strerror(err));
  return err == ENOENT ? 127 : 126;
}
