// runtime.hpp - starting and stopping the runtime: workers pinned to cores, a policy, and the tasks.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "skyloft/config.hpp"
#include "skyloft/stats.hpp"
#include "skyloft/task.hpp"
#include "skyloft/wait.hpp"

namespace skyloft {

class Policy;

struct BlockedTaskInfo {
  TaskId id = 0;
  WaitReason reason = WaitReason::none;
  const void* address = nullptr;  // the word it waits on
};

// What shutdown() found. Tasks that could never run again are reported, then freed, never dropped silently.
struct ShutdownReport {
  std::vector<BlockedTaskInfo> blocked;  // tasks still waiting when the runtime went quiet
  std::size_t unjoined = 0;              // finished tasks whose JoinHandle was neither joined nor destroyed
  std::size_t io_cancelled = 0;          // I/O operations in flight that shutdown cancelled (io.hpp)
  bool clean() const noexcept { return blocked.empty() && unjoined == 0; }
  std::string describe() const;
};

// One runtime per process (a second concurrent one is a std::logic_error). The constructor validates the
// configuration (throwing ConfigError with a precise message) and starts the workers; the destructor calls
// shutdown() if it was not called.
class Runtime {
 public:
  explicit Runtime(Config config = Config::from_env());
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Runs `f` as a task and blocks the calling kernel thread until it returns.
  template <class F>
  void block_on(F&& f) {
    spawn(std::forward<F>(f)).join();
  }

  // Waits until every task has finished, or until only tasks that nothing can wake remain (all workers idle,
  // no timers pending); then stops and joins the workers and frees every stack. Blocked tasks are listed in
  // the report and on stderr. Idempotent: later calls return the first report.
  ShutdownReport shutdown();

  std::size_t num_workers() const noexcept;
  std::vector<int> worker_cores() const;
  int dispatcher_core() const noexcept;  // -1 when the policy has no dispatcher
  std::vector<WorkerStats> stats() const;
  const Config& config() const noexcept;
  std::string_view policy_name() const noexcept;
  Policy& policy() noexcept;
  // Sets a policy parameter (see Policy::set_param); throws ConfigError when the policy rejects it.
  void set_policy_param(std::string_view key, std::string_view value);
  // Writes the policy's state and the per-worker stats to `out`.
  void dump(std::FILE* out) const;

  // Pollers: fn(arg, now_ns) is called on every turn of the runtime's polling thread, a few microseconds
  // apart: the place for what must be looked at that often without a core of its own (a NIC queue, an
  // in-process load generator releasing its arrivals, as the original's dispatcher did). The polling
  // thread is a centralized policy's dispatcher (sq) or the preemption ticker given a core of its own
  // (Config::dispatcher_core with the dispatcher/flag/hybrid mechanisms); while a poller is registered it
  // never parks. fn runs outside any task: it may spawn tasks and touch atomics, it must not block.
  // Throws ConfigError when the runtime has no polling thread or all 8 slots are taken; the caller must
  // not be fn itself.
  int add_poller(void (*fn)(void* arg, std::uint64_t now_ns), void* arg);
  // Unregisters a poller; returns once fn is not running and will not run again, so arg may be freed.
  void remove_poller(int id) noexcept;

  // The running runtime, or nullptr.
  static Runtime* current() noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace skyloft
