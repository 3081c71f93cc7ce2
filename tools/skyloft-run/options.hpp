// options.hpp - skyloft-run's command line: runtime options, then the program and its arguments.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace skyloft_run {

struct Options {
  std::optional<std::string> policy;
  std::optional<std::string> preempt;
  std::optional<std::string> quantum_us;
  std::optional<std::string> policy_params;  // "key=value,..." for the policy (checked by the runtime)
  std::optional<std::string> cores;
  std::optional<std::string> daemon;     // skyloftd's socket: share cores with other apps
  std::optional<std::string> app_class;  // "lc" or "be" under a daemon
  std::optional<std::string> task_tls;   // "on" (default) or "off": a TLS block per thread, as natively
  std::optional<std::string> worker_slice_us;  // the workers' EEVDF slice (SKYLOFT_WORKER_SLICE_US)
  bool help = false;
  std::vector<std::string> program;  // the program and its arguments
};

// A bad command line; the message names the option and what it accepts. Exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses argv[1..]; options end at "--" or at the first argument that is not an option. Validates every
// value (policy and mechanism names, the quantum's range, the core list against this process's cores).
Options parse_options(int argc, char** argv);

std::string usage_text();

}  // namespace skyloft_run
