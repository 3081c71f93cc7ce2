// config.cpp - Config::from_env and core-list parsing; every error names the bad value.
#include <sched.h>
#include <signal.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "core/fair_slice.hpp"
#include "skyloft/config.hpp"

namespace skyloft {
namespace {

constexpr int kMaxCoreId = static_cast<int>(kMaxWorkers) * 4;

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return std::string(s.substr(b, e - b));
}

int parse_core(std::string_view tok, const std::string& whole) {
  int v = -1;
  auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
  if (tok.empty() || ec != std::errc() || ptr != tok.data() + tok.size() || v < 0) {
    throw ConfigError(fmt::format("bad core list '{}': '{}' is not a core number", whole, tok));
  }
  if (v >= kMaxCoreId) {
    throw ConfigError(fmt::format("bad core list '{}': core {} is out of range (max {})", whole, v, kMaxCoreId - 1));
  }
  return v;
}

template <class T>
T parse_env_number(const char* name, const char* text, T max) {
  std::string s = trim(text);
  T v{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
    throw ConfigError(fmt::format("{}='{}' is not a number", name, text));
  }
  if (v > max) throw ConfigError(fmt::format("{}={} is out of range (max {})", name, text, max));
  return v;
}

// SKYLOFT_PREEMPT_SIGNAL: a number, or a signal name with or without "SIG" (URG, USR1, USR2, RTMIN,
// RTMIN+n, RTMAX-n). Whether the signal is allowed is checked when a runtime starts (Runtime's constructor).
int parse_env_signal(const char* text) {
  std::string s = trim(text);
  if (!s.empty() && s[0] >= '0' && s[0] <= '9') return parse_env_number<int>("SKYLOFT_PREEMPT_SIGNAL", text, 64);
  std::string_view name(s);
  if (name.substr(0, 3) == "SIG") name.remove_prefix(3);
  auto offset = [&](std::string_view rest, int base, int sign) {
    if (rest.empty()) return base;
    int n = -1;
    auto [ptr, ec] = std::from_chars(rest.data() + 1, rest.data() + rest.size(), n);
    if (rest.size() < 2 || rest[0] != (sign > 0 ? '+' : '-') || ec != std::errc() ||
        ptr != rest.data() + rest.size() || n < 0) {
      return -1;
    }
    return base + sign * n;
  };
  int sig = -1;
  if (name == "URG") sig = SIGURG;
  else if (name == "USR1") sig = SIGUSR1;
  else if (name == "USR2") sig = SIGUSR2;
  else if (name.substr(0, 5) == "RTMIN") sig = offset(name.substr(5), SIGRTMIN, +1);
  else if (name.substr(0, 5) == "RTMAX") sig = offset(name.substr(5), SIGRTMAX, -1);
  if (sig < 0) {
    throw ConfigError(fmt::format("SKYLOFT_PREEMPT_SIGNAL='{}' is neither a signal number nor one of SIGURG, SIGUSR1, "
                                  "SIGUSR2, SIGRTMIN[+n], SIGRTMAX[-n]",
                                  text));
  }
  return sig;
}

// SKYLOFT_NO_PREEMPT_LIBS: file-name prefixes separated by ':'.
std::vector<std::string> parse_env_libs(const char* text) {
  const std::string s = trim(text);
  if (s.empty()) {
    throw ConfigError("SKYLOFT_NO_PREEMPT_LIBS is set but empty: name libraries by file-name prefix, e.g. "
                      "'libjemalloc.so:libtcmalloc'");
  }
  std::vector<std::string> libs;
  std::size_t pos = 0, index = 1;
  for (;; ++index) {
    std::size_t colon = s.find(':', pos);
    std::string part = trim(std::string_view(s).substr(pos, colon == std::string::npos ? std::string::npos : colon - pos));
    if (part.empty()) {
      throw ConfigError(fmt::format("SKYLOFT_NO_PREEMPT_LIBS='{}': element {} is empty (prefixes are separated by "
                                    "single ':', e.g. 'libjemalloc.so:libtcmalloc')",
                                    text, index));
    }
    if (part.find('/') != std::string::npos) {
      throw ConfigError(fmt::format("SKYLOFT_NO_PREEMPT_LIBS='{}': element '{}' is a path; name the library by its "
                                    "file-name prefix, e.g. 'libjemalloc.so'",
                                    text, part));
    }
    libs.push_back(std::move(part));
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  return libs;
}

}  // namespace

std::vector<int> parse_core_list(const std::string& text) {
  std::string s = trim(text);
  if (s.empty()) throw ConfigError("empty core list: name at least one core, e.g. '0' or '0-3,6'");
  std::vector<bool> seen(kMaxCoreId, false);
  std::size_t pos = 0;
  while (pos <= s.size()) {
    std::size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    std::string part = trim(std::string_view(s).substr(pos, comma - pos));
    if (part.empty()) throw ConfigError(fmt::format("bad core list '{}': empty element", text));
    std::size_t dash = part.find('-');
    if (dash == std::string::npos) {
      seen[static_cast<std::size_t>(parse_core(part, text))] = true;
    } else {
      int lo = parse_core(trim(std::string_view(part).substr(0, dash)), text);
      int hi = parse_core(trim(std::string_view(part).substr(dash + 1)), text);
      if (hi < lo) throw ConfigError(fmt::format("bad core list '{}': range {} is reversed", text, part));
      for (int c = lo; c <= hi; ++c) seen[static_cast<std::size_t>(c)] = true;
    }
    pos = comma + 1;
  }
  std::vector<int> cores;
  for (int c = 0; c < kMaxCoreId; ++c) {
    if (seen[static_cast<std::size_t>(c)]) cores.push_back(c);
  }
  return cores;
}

std::string format_core_list(const std::vector<int>& cores) {
  std::string out;
  for (std::size_t i = 0; i < cores.size();) {
    std::size_t j = i;
    while (j + 1 < cores.size() && cores[j + 1] == cores[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? std::to_string(cores[i]) : fmt::format("{}-{}", cores[i], cores[j]);
    i = j + 1;
  }
  return out;
}

std::vector<int> allowed_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cores;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cores;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cores.push_back(c);
  }
  return cores;
}

namespace {
// A 0/1 environment switch; the error names both meanings.
bool parse_env_flag(const char* name, const char* value, const char* meaning0, const char* meaning1) {
  const std::string g = trim(value);
  if (g != "0" && g != "1") {
    throw ConfigError(fmt::format("{}='{}' must be 0 ({}) or 1 ({})", name, value, meaning0, meaning1));
  }
  return g == "1";
}
}  // namespace

Config Config::from_env() {
  Config c;
  if (const char* v = std::getenv("SKYLOFT_POLICY")) {
    c.policy = trim(v);
    if (c.policy.empty()) throw ConfigError("SKYLOFT_POLICY is set but empty: name a policy such as 'fifo'");
  }
  if (const char* v = std::getenv("SKYLOFT_POLICY_PARAMS")) c.policy_params = trim(v);
  if (const char* v = std::getenv("SKYLOFT_CORES")) c.cores = std::string(v);
  if (const char* v = std::getenv("SKYLOFT_STACK_SIZE")) {
    c.stack_size = parse_env_number<std::size_t>("SKYLOFT_STACK_SIZE", v, SIZE_MAX);
  }
  if (const char* v = std::getenv("SKYLOFT_STACK_GUARD")) {
    c.stack_guard = parse_env_flag("SKYLOFT_STACK_GUARD", v, "stacks carved from shared slabs with a canary, no per-task memory map",
                                   "a guard page per stack");
  }
  if (const char* v = std::getenv("SKYLOFT_TASK_TLS")) {
    c.task_tls = parse_env_flag("SKYLOFT_TASK_TLS", v, "tasks share their worker thread's thread-locals", "a TLS block per task");
  }
  if (const char* v = std::getenv("SKYLOFT_SPIN_US")) {
    c.spin_us = parse_env_number<std::uint32_t>("SKYLOFT_SPIN_US", v, 1'000'000);
  }
  if (const char* v = std::getenv("SKYLOFT_SPIN_YIELD")) {
    c.spin_yield = parse_env_flag("SKYLOFT_SPIN_YIELD", v, "an idle worker spins with PAUSE",
                                  "an idle worker yields its core between looks for work");
  }
  if (const char* v = std::getenv("SKYLOFT_WORKER_SLICE_US")) {
    c.worker_slice_us = parse_env_number<std::uint32_t>("SKYLOFT_WORKER_SLICE_US", v, fair_slice::kMaxUs);
  }
  if (const char* v = std::getenv("SKYLOFT_PIN_WORKERS")) {
    c.pin_workers = parse_env_flag("SKYLOFT_PIN_WORKERS", v, "the kernel places the worker threads on the listed cores",
                                   "each worker pinned to its core");
  }
  if (const char* v = std::getenv("SKYLOFT_PREEMPT")) c.preempt = trim(v);
  if (const char* v = std::getenv("SKYLOFT_QUANTUM_US")) {
    c.quantum_us = parse_env_number<std::uint32_t>("SKYLOFT_QUANTUM_US", v, 1'000'000);
  }
  if (const char* v = std::getenv("SKYLOFT_HYBRID_GRACE_US")) {
    c.hybrid_grace_us = parse_env_number<std::uint32_t>("SKYLOFT_HYBRID_GRACE_US", v, 1'000'000);
  }
  if (const char* v = std::getenv("SKYLOFT_HANDOFF_US")) {
    c.handoff_us = parse_env_number<std::uint32_t>("SKYLOFT_HANDOFF_US", v, 1'000'000);
  }
  if (const char* v = std::getenv("SKYLOFT_STALL_MS")) {
    c.stall_ms = parse_env_number<std::uint32_t>("SKYLOFT_STALL_MS", v, 3'600'000);
  }
  if (const char* v = std::getenv("SKYLOFT_PREEMPT_SIGNAL")) {
    c.preempt_signal = parse_env_signal(v);
  }
  if (const char* v = std::getenv("SKYLOFT_DAEMON")) {
    c.daemon = trim(v);
    if (c.daemon->empty()) {
      throw ConfigError("SKYLOFT_DAEMON is set but empty: give the socket path of a running skyloftd, or unset it");
    }
  }
  if (const char* v = std::getenv("SKYLOFT_APP_CLASS")) c.app_class = trim(v);
  if (const char* v = std::getenv("SKYLOFT_APP_NAME")) c.app_name = trim(v);
  if (const char* v = std::getenv("SKYLOFT_APP_DEMAND")) {
    c.app_demand = parse_env_number<std::uint32_t>("SKYLOFT_APP_DEMAND", v, 64);
  }
  if (const char* v = std::getenv("SKYLOFT_SHARE_SLICE_US")) {
    c.share_slice_us = parse_env_number<std::uint32_t>("SKYLOFT_SHARE_SLICE_US", v, 1'000'000);
  }
  if (const char* v = std::getenv("SKYLOFT_NO_PREEMPT_LIBS")) c.no_preempt_libs = parse_env_libs(v);
  if (const char* v = std::getenv("SKYLOFT_DISPATCHER_CORE")) {
    c.dispatcher_core = parse_env_number<int>("SKYLOFT_DISPATCHER_CORE", v, kMaxCoreId - 1);
  }
  if (const char* v = std::getenv("SKYLOFT_IO_BACKEND")) c.io_backend = trim(v);
  return c;
}

}  // namespace skyloft
