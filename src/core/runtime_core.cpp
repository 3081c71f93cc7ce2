// runtime_core.cpp - the shared runtime state: processors, threads, and the services policies call
// (PolicyHost). Starting and stopping the runtime is in src/runtime/.
#include "core/runtime_core.hpp"

#include <fmt/format.h>

#include <atomic>
#include <mutex>
#include <string_view>

#include "core/app_core.hpp"
#include "core/handoff.hpp"
#include "core/kthread.hpp"
#include "core/sysmon.hpp"

namespace skyloft {

std::atomic<RuntimeCore*> g_runtime{nullptr};

namespace {
std::atomic<std::uint64_t> g_epoch{0};
}  // namespace

RuntimeCore::RuntimeCore(Config cfg, std::vector<int> worker_cores, int dispatcher_core_, std::unique_ptr<Policy> pol,
                         std::unique_ptr<PreemptMechanism> mech)
    : config(std::move(cfg)),
      epoch(g_epoch.fetch_add(1) + 1),
      dispatcher_core(dispatcher_core_),
      policy(std::move(pol)),
      preempt(std::move(mech)),
      stacks(config.stack_size, config.stack_guard, worker_cores.size()) {
  const bool hooks = std::string_view(preempt->name()) != "none";
  for (std::size_t i = 0; i < worker_cores.size(); ++i) {
    procs.push_back(std::make_unique<Processor>(this, policy.get(), static_cast<int>(i), worker_cores[i]));
    Processor& p = *procs.back();
    p.preempt_hooks = hooks;
    p.track_run_start = preempt->tracks_run_start();
    p.self_quantum_ns = preempt->self_timed_quantum_ns(policy->needs_dispatcher());
    // A run younger than ~a quantum ignores requests: they were meant for the run before (a periodic
    // timer's phase, a signal pending across the switch whose interrupt alone costs ~18 us on a VM).
    p.min_run_ns = std::uint64_t{config.quantum_us} * 1000 * 7 / 8;
  }
}

RuntimeCore::~RuntimeCore() = default;

KThread* RuntimeCore::new_kthread(Processor* p) {
  KThread* kt;
  {
    std::lock_guard<SpinLock> g(kthreads_lock);
    kthreads.push_back(std::make_unique<KThread>(this, static_cast<std::uint32_t>(kthreads.size() + 1)));
    kt = kthreads.back().get();
  }
  kt->next_proc.store(p, std::memory_order_release);
  char name[16];
  if (p != nullptr) {
    std::snprintf(name, sizeof name, "skyloft-w%d", p->index);
  } else {
    std::snprintf(name, sizeof name, "skyloft-spare");
  }
  kt->os.start(&kthread_main, kt, name);
  return kt;
}

bool RuntimeCore::is_lent(int worker) const noexcept {
  const AppCore* ac = shared_core(procs[static_cast<std::size_t>(worker)].get());
  return ac != nullptr && ac->lent();
}

void RuntimeCore::kick(int worker) noexcept { procs[static_cast<std::size_t>(worker)]->park.unpark(); }

void RuntimeCore::notify_work_available() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // W1: the enqueue is visible before we look
  if (nr_spinning.load(std::memory_order_relaxed) > 0) return;  // a searching processor will find it
  if (nr_parked.load(std::memory_order_relaxed) == 0) return;
  const std::size_t n = procs.size();
  const std::size_t start = wake_cursor.fetch_add(1, std::memory_order_relaxed) % n;
  for (std::size_t i = 0; i < n; ++i) {
    if (procs[(start + i) % n]->park.unpark()) return;
  }
}

void RuntimeCore::kick_dispatcher() noexcept { dispatcher_park.unpark(); }

void RuntimeCore::task_waiting(int worker) noexcept {
  Processor& p = *procs[static_cast<std::size_t>(worker)];
  if (p.preempt_hooks) preempt->task_waiting(p);
}

void RuntimeCore::timer_armed(Processor* p, std::uint64_t deadline) noexcept {
  if (p == nullptr || p->index < 0 || policy->nr_waiting(p->index) == 0) return;  // p will idle and fire it
  // p will go on running another task: a parked processor must wake by the deadline to fire it for p
  // (idle processors run busy ones' due timers), and the mechanism interrupts p near it.
  if (nr_parked.load(std::memory_order_relaxed) > 0 && nr_spinning.load(std::memory_order_relaxed) == 0) {
    for (auto& q : procs) {
      if (q.get() != p && q->park.unpark()) break;  // it re-computes its deadline over busy processors
    }
  }
  if (p->preempt_hooks) preempt->timer_armed(*p, deadline);
}

int RuntimeCore::worker_for_core_slow(int core) const {
  for (const auto& p : procs) {
    if (p->core == core) return p->index;
  }
  std::vector<int> cores;
  for (const auto& p : procs) cores.push_back(p->core);
  throw ConfigError(fmt::format("core hint {} is not a worker core of this runtime (worker cores: {})", core,
                                format_core_list(cores)));
}

std::uint64_t RuntimeCore::live_tasks() const noexcept {
  std::uint64_t spawned = external_spawned.load(std::memory_order_acquire), exited = 0;
  for (const auto& p : procs) {
    spawned += p->spawned.get();
    exited += p->exited.get();
  }
  return spawned >= exited ? spawned - exited : 0;
}

}  // namespace skyloft
