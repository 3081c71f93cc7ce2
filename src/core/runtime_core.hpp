// runtime_core.hpp (internal) - the state of the running runtime that threads, tasks and policies share.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/park.hpp"
#include "core/pollers.hpp"
#include "core/os_thread.hpp"
#include "core/preempt_hooks.hpp"
#include "core/processor.hpp"
#include "core/spinlock.hpp"
#include "core/stack_pool.hpp"
#include "skyloft/config.hpp"
#include "skyloft/policy.hpp"
#include "skyloft/runtime.hpp"

namespace skyloft {

struct KThread;
class Sysmon;

// Task ids are handed out to processors in blocks so spawning does not contend on one counter.
inline constexpr std::uint64_t kTaskIdBlock = 1024;

struct RuntimeCore final : PolicyHost {
  RuntimeCore(Config config, std::vector<int> worker_cores, int dispatcher_core, std::unique_ptr<Policy> policy,
              std::unique_ptr<PreemptMechanism> preempt);
  ~RuntimeCore() override;

  // PolicyHost
  int num_workers() const noexcept override { return static_cast<int>(procs.size()); }
  int core_of(int worker) const noexcept override { return procs[static_cast<std::size_t>(worker)]->core; }
  void kick(int worker) noexcept override;
  void notify_work_available() noexcept override;
  bool is_idle(int worker) const noexcept override {
    return procs[static_cast<std::size_t>(worker)]->idle.load(std::memory_order_relaxed);
  }
  bool is_parked(int worker) const noexcept override { return procs[static_cast<std::size_t>(worker)]->park.parked(); }
  bool is_lent(int worker) const noexcept override;
  bool is_stalled(int worker) const noexcept override {
    return procs[static_cast<std::size_t>(worker)]->stalled.load(std::memory_order_relaxed);
  }
  void kick_dispatcher() noexcept override;
  void task_waiting(int worker) noexcept override;

  // A task on `p` armed a timer due at `deadline` (see PreemptMechanism::timer_armed): makes sure someone
  // fires it near its deadline even if p keeps running another task.
  void timer_armed(Processor* p, std::uint64_t deadline) noexcept;

  // Worker index for a core hint; -1 when `core` is -1. Throws ConfigError for an unmanaged core.
  int worker_for_core(int core) const { return core < 0 ? -1 : worker_for_core_slow(core); }
  int worker_for_core_slow(int core) const;
  // A fresh task id; `p` is the calling processor or nullptr.
  std::uint64_t allocate_task_id(Processor* p) noexcept {
    if (p == nullptr || p->index < 0) return next_task_id.fetch_add(1, std::memory_order_relaxed);
    if (p->next_id == p->end_id) {
      p->next_id = next_task_id.fetch_add(kTaskIdBlock, std::memory_order_relaxed);
      p->end_id = p->next_id + kTaskIdBlock;
    }
    return p->next_id++;
  }
  std::uint64_t live_tasks() const noexcept;
  // Creates a kernel thread that will drive `p` (nullptr: a spare). Start and the hand-off monitor only.
  KThread* new_kthread(Processor* p);

  // ---- read-only after construction ----
  const Config config;
  const std::uint64_t epoch;
  const int dispatcher_core;  // -1: no dispatcher
  std::unique_ptr<Policy> policy;
  std::unique_ptr<PreemptMechanism> preempt;
  std::vector<std::unique_ptr<Processor>> procs;
  StackPool stacks;

  // ---- kernel threads: created by start and by the hand-off monitor (kthreads_lock) ----
  SpinLock kthreads_lock;
  std::vector<std::unique_ptr<KThread>> kthreads;  // every thread ever created; joined at shutdown
  SpinLock spares_lock;
  KThread* spares = nullptr;                        // parked spare threads (KThread::next_spare)
  std::unique_ptr<Sysmon> sysmon;                   // the monitor thread (hand-off, stall watchdog)

  // ---- shared counters and flags ----
  alignas(64) std::atomic<std::uint64_t> next_task_id{1};
  alignas(64) std::atomic<std::uint64_t> external_spawned{0};
  alignas(64) std::atomic<int> nr_spinning{0};
  std::atomic<int> nr_parked{0};
  std::atomic<std::int64_t> zombies{0};  // exited, not yet joined or detached
  std::atomic<bool> stopping{false};
  std::atomic<unsigned> wake_cursor{0};

  // ---- the dispatcher of centralized policies ----
  OsThread dispatcher;
  alignas(64) ParkWord dispatcher_park;
  std::atomic<bool> dispatcher_parked_forever{false};
  // User pollers (Runtime::add_poller), run by the dispatcher or by a ticker with a core of its own.
  PollerSet pollers;

  Runtime* owner = nullptr;
  std::atomic<bool> stopped{false};
  ShutdownReport report;
};

// The running runtime (nullptr when none).
extern std::atomic<RuntimeCore*> g_runtime;
inline RuntimeCore* current_runtime() noexcept { return g_runtime.load(std::memory_order_acquire); }

}  // namespace skyloft
