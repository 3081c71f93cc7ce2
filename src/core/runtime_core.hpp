// runtime_core.hpp (internal) - the state of the running runtime that workers, tasks and policies share.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/park.hpp"
#include "core/stack_pool.hpp"
#include "core/worker.hpp"
#include "preempt/mechanism.hpp"
#include "skyloft/config.hpp"
#include "skyloft/policy.hpp"
#include "skyloft/runtime.hpp"

namespace skyloft {

// Task ids are handed out to workers in blocks so spawning does not contend on one counter.
inline constexpr std::uint64_t kTaskIdBlock = 1024;

struct RuntimeCore final : PolicyHost {
  RuntimeCore(Config config, std::vector<int> worker_cores, int dispatcher_core, std::unique_ptr<Policy> policy,
              std::unique_ptr<PreemptMechanism> preempt);
  ~RuntimeCore() override;

  // PolicyHost
  int num_workers() const noexcept override { return static_cast<int>(workers.size()); }
  int core_of(int worker) const noexcept override { return workers[static_cast<std::size_t>(worker)]->core; }
  void kick(int worker) noexcept override;
  void notify_work_available() noexcept override;
  bool is_idle(int worker) const noexcept override {
    return workers[static_cast<std::size_t>(worker)]->idle.load(std::memory_order_relaxed);
  }
  void kick_dispatcher() noexcept override;
  void task_waiting(int worker) noexcept override;

  void start();
  ShutdownReport stop();
  // Worker index for a core hint; -1 when `core` is -1. Throws ConfigError for an unmanaged core.
  int worker_for_core(int core) const {
    return core < 0 ? -1 : worker_for_core_slow(core);
  }
  int worker_for_core_slow(int core) const;
  // A fresh task id; `w` is the calling worker or nullptr.
  std::uint64_t allocate_task_id(Worker* w) noexcept {
    if (w == nullptr) return next_task_id.fetch_add(1, std::memory_order_relaxed);
    if (w->next_id == w->end_id) {
      w->next_id = next_task_id.fetch_add(kTaskIdBlock, std::memory_order_relaxed);
      w->end_id = w->next_id + kTaskIdBlock;
    }
    return w->next_id++;
  }
  std::uint64_t live_tasks() const noexcept;

  // ---- read-only after construction ----
  const Config config;
  const std::uint64_t epoch;
  const int dispatcher_core;  // -1: no dispatcher
  std::unique_ptr<Policy> policy;
  std::unique_ptr<PreemptMechanism> preempt;
  std::vector<std::unique_ptr<Worker>> workers;
  StackPool stacks;

  // ---- shared counters and flags ----
  alignas(64) std::atomic<std::uint64_t> next_task_id{1};
  alignas(64) std::atomic<std::uint64_t> external_spawned{0};
  alignas(64) std::atomic<int> nr_spinning{0};
  std::atomic<int> nr_parked{0};
  std::atomic<std::int64_t> zombies{0};  // exited, not yet joined or detached
  std::atomic<bool> stopping{false};
  std::atomic<unsigned> wake_cursor{0};

  // ---- the dispatcher of centralized policies ----
  std::thread dispatcher;
  alignas(64) ParkWord dispatcher_park;
  std::atomic<bool> dispatcher_parked_forever{false};

  Runtime* owner = nullptr;
  std::once_flag stop_once;
  ShutdownReport report;

 private:
  void dispatcher_loop();
};

// The running runtime (nullptr when none).
extern std::atomic<RuntimeCore*> g_runtime;
inline RuntimeCore* current_runtime() noexcept { return g_runtime.load(std::memory_order_acquire); }


}  // namespace skyloft
