// systems.hpp - the systems the demo compares (--systems), and what a run of one needs and gives back.
//
// Every system gets the same plan and the same generator thread (workload.hpp); they differ only in who runs
// the requests:
//   skyloft  one task per request (skyloft::spawn from the generator, detached) under a policy and a
//            preemption mechanism;
//   linux    kernel threads: a pool of one thread per core sharing one mutex/condvar FIFO queue (each
//            thread runs a request to completion); many threads with a lock-free mailbox each, so that
//            the kernel time-slices the requests in flight (optionally with an EEVDF custom slice); or one
//            std::thread per request.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skyloft/skyloft.hpp"
#include "workload.hpp"

namespace demo {

struct SystemSpec {
  const char* key;        // the --systems name
  const char* about;      // one line for --help and the report
  bool skyloft;
  // skyloft systems
  const char* policy = nullptr;   // Config::policy
  const char* preempt = "none";   // Config::preempt
  bool quantum = false;           // preempts at --quantum-us
  bool preempt_points = false;    // the request loop calls skyloft::preempt_point() every ~1 us of work
  // linux systems
  enum class Threads { per_core, many, per_request } threads = Threads::per_core;
  bool tuned_slice = false;       // every thread asks for --linux-slice-us (EEVDF custom slice)
};

// All systems, in the default report order.
const std::vector<SystemSpec>& all_systems();
const SystemSpec* find_system(std::string_view key);

// What the runs share: the settings of this invocation.
struct RunSettings {
  std::vector<int> cores;          // cores under test (workers, pool threads and the generator)
  skyloft::Config base;            // from SKYLOFT_* (spin_us etc.); policy/preempt/quantum set per system
  u32 quantum_us = 100;            // skyloft preempting systems' quantum (see main.cpp's usage)
  u32 linux_threads = 64;          // threads of the "many" pools
  u32 linux_slice_us = 100;        // EEVDF custom slice of the tuned pools
  GeneratorSched gen;              // the generator thread's slice and priority
  std::chrono::nanoseconds timeout{std::chrono::seconds(3)};  // no progress this long: a hang
  std::string repro;               // the command line, for hang reports
};

// The outcome of one system in one round: the records (for the statistics), or why there are none.
struct RunOutcome {
  std::string label;     // e.g. "skyloft rr (timer 20us)", "linux pool 64 thr, 100us slice"
  std::string workers;   // e.g. "2", "2+disp", "64", "1/req"
  std::optional<Workload> work;  // nullopt: skipped, failed or hung (see status)
  GenResult gen;
  double cpu_s = 0;
  std::string status = "ok";
  bool hung = false;     // a skyloft runtime was abandoned (leaked): the process must not run destructors
};

std::string label_of(const SystemSpec& s, const RunSettings& rs);

RunOutcome run_skyloft(const SystemSpec& s, const RunSettings& rs, const Plan& plan, const Calibration& cal,
                       bool verbose);
RunOutcome run_linux(const SystemSpec& s, const RunSettings& rs, const Plan& plan, const Calibration& cal);

// Waits for a run: wait_for(d) waits up to d and returns true when every request finished; left() counts
// the unfinished ones. False when neither the generator nor the requests moved for rs.timeout.
template <class WaitFor, class Left>
bool wait_with_watchdog(const RunSettings& rs, const std::atomic<u32>& submitted, WaitFor&& wait_for,
                        Left&& left) {
  auto last_change = std::chrono::steady_clock::now();
  std::pair<std::size_t, u32> last{left(), submitted.load(std::memory_order_relaxed)};
  for (;;) {
    if (wait_for(std::chrono::milliseconds(100))) return true;
    std::pair<std::size_t, u32> now_state{left(), submitted.load(std::memory_order_relaxed)};
    const auto now = std::chrono::steady_clock::now();
    if (now_state != last) {
      last = now_state;
      last_change = now;
    } else if (now - last_change >= rs.timeout) {
      return false;
    }
  }
}

std::string hang_status(const RunSettings& rs, std::size_t left, std::size_t total);

}  // namespace demo
