// thread_cpu.hpp - where a skyloft process's CPU goes: each thread's time on a CPU
// (/proc/self/task/*/schedstat, ns) and its context switches, summed by the runtime's thread names: workers
// (skyloft-w*, and the hand-off's skyloft-spare*), the monitor (skyloft-sysmon), the preemption ticker or
// dispatcher (skyloft-tick*, skyloft-disp*), and every other thread (a load generator, main).
// Used by skyloft_wakeup (per cell) and skyloft_lcbe (per load point of the LC app).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>

namespace skyloft::bench {

enum Role { kWorker, kSysmon, kTicker, kOther, kRoles };

// Per role over a window: CPU time in % of the machine, context switches per second.
struct RoleUse {
  double cpu_pct[kRoles] = {};
  double involuntary_per_s[kRoles] = {};
  double voluntary_per_s[kRoles] = {};  // it slept (a ticker's wake-ups)
  bool ok = false;
};

struct ThreadSnap {
  Role role = kOther;
  std::uint64_t cpu_ns = 0, involuntary = 0, voluntary = 0;
};

// Every thread of this process now, by thread id.
inline std::map<int, ThreadSnap> thread_snap() {
  std::map<int, ThreadSnap> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    ThreadSnap t;
    std::string comm;
    std::ifstream(e.path() / "comm") >> comm;
    if (comm.rfind("skyloft-w", 0) == 0 || comm.rfind("skyloft-spare", 0) == 0) t.role = kWorker;
    else if (comm.rfind("skyloft-sysmon", 0) == 0) t.role = kSysmon;
    else if (comm.rfind("skyloft-tick", 0) == 0 || comm.rfind("skyloft-disp", 0) == 0) t.role = kTicker;
    if (!(std::ifstream(e.path() / "schedstat") >> t.cpu_ns)) continue;
    std::ifstream status(e.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) t.involuntary = std::stoull(line.substr(27));
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) t.voluntary = std::stoull(line.substr(24));
    }
    try {
      out[std::stoi(e.path().filename().string())] = t;
    } catch (const std::exception&) {
    }
  }
  return out;
}

// Between two snapshots `window_s` apart, on a machine of `ncores` cores (threads born meanwhile count
// from zero).
inline RoleUse role_use(const std::map<int, ThreadSnap>& a, const std::map<int, ThreadSnap>& b, double window_s, int ncores) {
  RoleUse u;
  if (window_s <= 0 || ncores <= 0) return u;
  for (const auto& [tid, t] : b) {
    auto it = a.find(tid);
    const ThreadSnap base = it != a.end() ? it->second : ThreadSnap{};
    u.cpu_pct[t.role] += 100.0 * static_cast<double>(t.cpu_ns - std::min(t.cpu_ns, base.cpu_ns)) / (window_s * 1e9 * ncores);
    u.involuntary_per_s[t.role] += static_cast<double>(t.involuntary - std::min(t.involuntary, base.involuntary)) / window_s;
    u.voluntary_per_s[t.role] += static_cast<double>(t.voluntary - std::min(t.voluntary, base.voluntary)) / window_s;
  }
  u.ok = true;
  return u;
}

}  // namespace skyloft::bench
