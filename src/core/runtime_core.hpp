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
#include "skyloft/config.hpp"
#include "skyloft/policy.hpp"
#include "skyloft/runtime.hpp"

namespace skyloft {

struct RuntimeCore final : PolicyHost {
  RuntimeCore(Config config, std::vector<int> worker_cores, int dispatcher_core, std::unique_ptr<Policy> policy);
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

  void start();
  ShutdownReport stop();
  // Worker index for a core hint; -1 when `core` is -1. Throws ConfigError for an unmanaged core.
  int worker_for_core(int core) const;
  std::uint64_t live_tasks() const noexcept;

  // ---- read-only after construction ----
  const Config config;
  const std::uint64_t epoch;
  const int dispatcher_core;  // -1: no dispatcher
  std::unique_ptr<Policy> policy;
  std::vector<std::unique_ptr<Worker>> workers;
  StackPool stacks;

  // ---- shared counters and flags ----
  alignas(64) std::atomic<std::uint64_t> next_task_id{1};
  alignas(64) std::atomic<std::uint64_t> external_spawned{0};
  alignas(64) std::atomic<int> nr_spinning{0};
  std::atomic<int> nr_parked{0};
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
RuntimeCore* current_runtime() noexcept;

}  // namespace skyloft
