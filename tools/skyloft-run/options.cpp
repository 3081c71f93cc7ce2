// options.cpp - parsing and validating skyloft-run's options ("--name value" or "--name=value").
#include "options.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

#include <fmt/format.h>

#include "core/fair_slice.hpp"
#include "preempt/mechanism.hpp"
#include "skyloft/config.hpp"
#include "skyloft/policy.hpp"

namespace skyloft_run {
namespace {

constexpr std::uint32_t kMaxQuantumUs = 1'000'000;

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void check_name(std::string_view opt, const std::string& value, const std::vector<std::string>& known) {
  if (std::find(known.begin(), known.end(), value) == known.end()) {
    throw UsageError(fmt::format("{}: unknown '{}' (one of: {})", opt, value, joined(known)));
  }
}

// A number of microseconds in lo..hi, or 0 where zero_ok (the kernel's default).
void check_us(std::string_view opt, const std::string& value, std::uint32_t lo, std::uint32_t hi, bool zero_ok) {
  std::uint32_t us = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), us);
  if (value.empty() || ec == std::errc::invalid_argument || end != value.data() + value.size()) {
    throw UsageError(fmt::format("{}: '{}' is not a number of microseconds", opt, value));
  }
  if (ec == std::errc::result_out_of_range || (us == 0 && !zero_ok) || (us != 0 && (us < lo || us > hi))) {
    throw UsageError(fmt::format("{}: {} is out of range ({}{}..{})", opt, value, zero_ok ? "0 or " : "", lo, hi));
  }
}

void check_cores(const std::string& value) {
  std::vector<int> cores;
  try {
    cores = skyloft::parse_core_list(value);
  } catch (const skyloft::ConfigError& e) {
    throw UsageError(fmt::format("--cores: {}", e.what()));
  }
  std::vector<int> allowed = skyloft::allowed_cores();
  for (int c : cores) {
    if (!std::binary_search(allowed.begin(), allowed.end(), c)) {
      throw UsageError(fmt::format("--cores: core {} is not available (this process may run on cores {})", c,
                                   skyloft::format_core_list(allowed)));
    }
  }
}

}  // namespace

std::string usage_text() {
  return fmt::format(R"(usage: skyloft-run [options] [--] program [args...]

Runs an unmodified, dynamically linked program with its main and every thread it creates as skyloft tasks
(LD_PRELOAD of libskyloft_preload.so). The program's exit status and fatal signals are its own.

options:
  --policy P        scheduling policy: {} (default fifo)
  --preempt M       preemption: {} (default none)
  --quantum-us Q    time slice in microseconds, 1..1000000 (default 100)
  --policy-params K=V[,K=V...]
                    the policy's parameters, e.g. cfs: latency_us=8000,wakeup_granularity_us=500
  --cores LIST      cores to run on, e.g. 0-3,6 (default: every core this process may use)
  --daemon SOCK     join the skyloftd listening on SOCK and run on the cores it grants (not with --cores)
  --class C         under a daemon: lc (latency-critical, takes cores first) or be (best effort; default)
  --task-tls on|off thread-locals (errno, thread_local, malloc's thread cache) per thread as natively (on,
                    the default), or shared by the threads that run on one worker (off: faster switches)
  --worker-slice-us S
                    the worker threads' kernel (EEVDF) slice, 100..100000 us, or 0 for the kernel's ~3 ms
                    (default 0): on cores shared with other busy processes, 100 lets a woken worker
                    preempt them instead of waiting out their slice (Linux 6.12+)
  -h, --help        show this help

Other runtime settings come from the SKYLOFT_* environment variables (see the README).
)",
                     joined(skyloft::policy_names()), joined(skyloft::mechanism_names()));
}

Options parse_options(int argc, char** argv) {
  Options o;
  int i = 1;
  for (; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "-h" || arg == "--help") {
      o.help = true;
      return o;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // the program
    std::string_view name = arg, inline_value;
    bool has_inline = false;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
      has_inline = true;
    }
    std::optional<std::string>* slot = nullptr;
    if (name == "--policy") slot = &o.policy;
    else if (name == "--preempt") slot = &o.preempt;
    else if (name == "--quantum-us") slot = &o.quantum_us;
    else if (name == "--policy-params") slot = &o.policy_params;
    else if (name == "--cores") slot = &o.cores;
    else if (name == "--daemon") slot = &o.daemon;
    else if (name == "--class") slot = &o.app_class;
    else if (name == "--task-tls") slot = &o.task_tls;
    else if (name == "--worker-slice-us") slot = &o.worker_slice_us;
    else throw UsageError(fmt::format("unknown option '{}' (see --help)", arg));
    if (has_inline) {
      *slot = std::string(inline_value);
    } else if (i + 1 < argc) {
      *slot = std::string(argv[++i]);
    } else {
      throw UsageError(fmt::format("{} needs a value (see --help)", name));
    }
  }
  for (; i < argc; ++i) o.program.emplace_back(argv[i]);
  if (o.program.empty()) throw UsageError("no program given: skyloft-run [options] -- program [args...]");
  if (o.policy) check_name("--policy", *o.policy, skyloft::policy_names());
  if (o.preempt) check_name("--preempt", *o.preempt, skyloft::mechanism_names());
  if (o.quantum_us) check_us("--quantum-us", *o.quantum_us, 1, kMaxQuantumUs, false);
  if (o.worker_slice_us) {
    check_us("--worker-slice-us", *o.worker_slice_us, skyloft::fair_slice::kMinUs, skyloft::fair_slice::kMaxUs, true);
  }
  if (o.cores) check_cores(*o.cores);
  if (o.policy_params && o.policy_params->find('=') == std::string::npos) {
    throw UsageError(fmt::format("--policy-params: '{}' is not key=value[,key=value...]", *o.policy_params));
  }
  if (o.daemon && o.daemon->empty()) throw UsageError("--daemon: give the socket path of a running skyloftd");
  if (o.daemon && o.cores) throw UsageError("--cores and --daemon exclude each other: the daemon grants the cores");
  if (o.task_tls && *o.task_tls != "on" && *o.task_tls != "off") {
    throw UsageError(fmt::format("--task-tls: '{}' is neither on nor off", *o.task_tls));
  }
  if (o.app_class) {
    if (!o.daemon) throw UsageError("--class needs --daemon (classes rank apps sharing cores through skyloftd)");
    if (*o.app_class != "lc" && *o.app_class != "be") {
      throw UsageError(fmt::format("--class: unknown '{}' (one of: lc, be)", *o.app_class));
    }
  }
  return o;
}

}  // namespace skyloft_run
