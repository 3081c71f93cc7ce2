// runtime.cpp - starting, stopping and describing the runtime; spawning and joining tasks.
//
// Shutdown protocol:
//   S1. Wait until no task is alive, or until the runtime is quiet: every worker (and the dispatcher) is
//       parked with no timer armed, and the dispatch/spawn counters did not move over two checks 2 ms apart.
//       Then the remaining tasks are blocked on something no task can signal any more.
//   S2. Set `stopping` and kick everyone; workers drain their runnable tasks and leave their loops.
//   S3. Remove the blocked tasks from the wait table, report them (stderr and ShutdownReport), free every
//       stack (StackPool::release_all also reclaims tasks that exited but were never joined).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "core/fatal.hpp"
#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "core/wait_table.hpp"

namespace skyloft {

void worker_main(Worker* w);
void task_entry(void* arg, void* transfer);

std::atomic<RuntimeCore*> g_runtime{nullptr};

namespace {
std::atomic<std::uint64_t> g_epoch{0};
}  // namespace

RuntimeCore::RuntimeCore(Config cfg, std::vector<int> worker_cores, int dispatcher_core_,
                         std::unique_ptr<Policy> pol, std::unique_ptr<PreemptMechanism> mech)
    : config(std::move(cfg)),
      epoch(g_epoch.fetch_add(1) + 1),
      dispatcher_core(dispatcher_core_),
      policy(std::move(pol)),
      preempt(std::move(mech)),
      stacks(config.stack_size, config.stack_guard, worker_cores.size()) {
  const bool hooks = std::string_view(preempt->name()) != "none";
  for (std::size_t i = 0; i < worker_cores.size(); ++i) {
    workers.push_back(std::make_unique<Worker>(*this, policy.get(), static_cast<int>(i), worker_cores[i]));
    workers.back()->preempt_hooks = hooks;
    workers.back()->track_run_start = preempt->tracks_run_start();
    // A run younger than ~a quantum ignores requests: they were meant for the run before (a periodic
    // timer's phase, a signal pending across the switch whose interrupt alone costs ~18 us on a VM).
    workers.back()->min_run_ns = std::uint64_t{config.quantum_us} * 1000 * 7 / 8;
  }
}

RuntimeCore::~RuntimeCore() = default;

void RuntimeCore::start() {
  install_fault_handler();
  if (workers.front()->preempt_hooks) install_preempt_handler();
  policy->init(*this);
  preempt->start(*this);
  for (auto& w : workers) {
    Worker* wp = w.get();
    w->thread = std::thread([wp] { worker_main(wp); });
  }
  if (policy->needs_dispatcher()) dispatcher = std::thread([this] { dispatcher_loop(); });
}

void RuntimeCore::kick(int worker) noexcept { workers[static_cast<std::size_t>(worker)]->park.unpark(); }

void RuntimeCore::notify_work_available() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // W1: the enqueue is visible before we look
  if (nr_spinning.load(std::memory_order_relaxed) > 0) return;  // a searching worker will find it
  if (nr_parked.load(std::memory_order_relaxed) == 0) return;
  const std::size_t n = workers.size();
  const std::size_t start = wake_cursor.fetch_add(1, std::memory_order_relaxed) % n;
  for (std::size_t i = 0; i < n; ++i) {
    if (workers[(start + i) % n]->park.unpark()) return;
  }
}

void RuntimeCore::kick_dispatcher() noexcept { dispatcher_park.unpark(); }

void RuntimeCore::task_waiting(int worker) noexcept {
  Worker& w = *workers[static_cast<std::size_t>(worker)];
  if (w.preempt_hooks) preempt->task_waiting(w);
}

void RuntimeCore::dispatcher_loop() {
  if (config.pin_workers) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(dispatcher_core, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  pthread_setname_np(pthread_self(), "skyloft-disp");
  const std::uint64_t spin_ns = std::uint64_t{config.spin_us} * 1000;
  std::uint64_t idle_since = now_ns();
  std::uint64_t next_scan = 0;  // the preemption mechanism's next check (ticker mechanisms)
  std::uint64_t last_scan = 0;
  constexpr std::uint64_t kRescanNs = 5'000;  // new contention is noticed within this
  while (!stopping.load(std::memory_order_acquire)) {
    std::uint64_t now = now_ns();
    if (now >= next_scan || now - last_scan >= kRescanNs) {
      next_scan = preempt->scan(now);
      last_scan = now;
    }
    if (policy->poll()) {
      idle_since = now_ns();
      continue;
    }
    if (now - idle_since < spin_ns || next_scan != UINT64_MAX) {
      cpu_relax();  // with a quantum to watch the dispatcher polls: it owns its core
      continue;
    }
    dispatcher_park.prepare();
    if (policy->poll() || stopping.load(std::memory_order_acquire)) {
      dispatcher_park.cancel();
      idle_since = now_ns();
      continue;
    }
    dispatcher_parked_forever.store(true, std::memory_order_release);
    dispatcher_park.wait(UINT64_MAX);
    next_scan = 0;
    dispatcher_parked_forever.store(false, std::memory_order_relaxed);
    idle_since = now_ns();
  }
}

int RuntimeCore::worker_for_core_slow(int core) const {
  for (const auto& w : workers) {
    if (w->core == core) return w->index;
  }
  std::vector<int> cores;
  for (const auto& w : workers) cores.push_back(w->core);
  throw ConfigError(fmt::format("core hint {} is not a worker core of this runtime (worker cores: {})", core,
                                format_core_list(cores)));
}

std::uint64_t RuntimeCore::live_tasks() const noexcept {
  std::uint64_t spawned = external_spawned.load(std::memory_order_acquire), exited = 0;
  for (const auto& w : workers) {
    spawned += w->spawned.get();
    exited += w->exited.get();
  }
  return spawned >= exited ? spawned - exited : 0;
}

ShutdownReport RuntimeCore::stop() {
  std::call_once(stop_once, [this] {
    // S1
    auto activity = [this] {
      std::uint64_t sum = external_spawned.load(std::memory_order_acquire);
      for (const auto& w : workers) sum += w->tasks_run.get() + w->spawned.get();
      return sum;
    };
    auto quiet = [this] {
      for (const auto& w : workers) {
        if (!w->parked_forever.load(std::memory_order_acquire)) return false;
        if (policy->nr_waiting(w->index) != 0) return false;  // queued work a kick has not reached yet
      }
      return dispatcher_core < 0 || dispatcher_parked_forever.load(std::memory_order_acquire);
    };
    for (;;) {
      if (live_tasks() == 0) break;
      std::uint64_t before = activity();
      if (quiet()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        if (quiet() && activity() == before && live_tasks() != 0) break;
        continue;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    // S2
    stopping.store(true, std::memory_order_seq_cst);
    for (auto& w : workers) w->park.unpark();
    dispatcher_park.unpark();
    for (auto& w : workers) w->thread.join();
    if (dispatcher.joinable()) dispatcher.join();
    preempt->stop();
    // S3
    std::vector<Task*> blocked_tasks;
    wait_table_drop_tasks(epoch, report.blocked, blocked_tasks);
    // Tasks parked in join() are not in the wait table: follow the chains from each blocked task.
    for (std::size_t i = 0; i < blocked_tasks.size(); ++i) {
      Task* t = blocked_tasks[i];
      if (t->join_state.load(std::memory_order_acquire) == kJoinTaskWaiting) {
        blocked_tasks.push_back(t->joiner);
        report.blocked.push_back(BlockedTaskInfo{t->joiner->sched.id, WaitReason::join, &t->join_state});
      }
    }
    for (Task* t : blocked_tasks) arch::destroy_context(t->ctx);
    std::int64_t z = zombies.load(std::memory_order_acquire);
    report.unjoined = z > 0 ? static_cast<std::size_t>(z) : 0;
    stacks.release_all();
    if (!report.blocked.empty()) std::fprintf(stderr, "%s", report.describe().c_str());
  });
  return report;
}

// ---- Runtime ----

struct Runtime::Impl {
  std::unique_ptr<RuntimeCore> core;
};

namespace {

std::vector<int> resolve_cores(const Config& cfg) {
  std::vector<int> allowed = allowed_cores();
  if (!cfg.cores) return allowed;
  std::vector<int> cores = parse_core_list(*cfg.cores);
  for (int c : cores) {
    if (!std::binary_search(allowed.begin(), allowed.end(), c)) {
      throw ConfigError(fmt::format("core {} in core list '{}' is out of range: this process may run on cores {}",
                                    c, *cfg.cores, format_core_list(allowed)));
    }
  }
  return cores;
}

}  // namespace

Runtime::Runtime(Config config) : impl_(std::make_unique<Impl>()) {
  (void)now_ns();  // calibrates the TSC clock now (20 ms) rather than in the first scheduling decision
  std::unique_ptr<Policy> policy = make_policy(config.policy);
  config.stack_size = StackPool::validate_size(config.stack_size, config.stack_guard);
  if (config.spin_us > 1'000'000) {
    throw ConfigError(fmt::format("spin_us {} is out of range (0..1000000 microseconds)", config.spin_us));
  }
  std::unique_ptr<PreemptMechanism> mech =
      make_preempt_mechanism(config.preempt, config.quantum_us, config.hybrid_grace_us);
  std::vector<int> cores = resolve_cores(config);
  int dispatcher = -1;
  if (!policy->needs_dispatcher() && mech->has_ticker() && config.dispatcher_core >= 0) {
    // A ticker thread with a core of its own: that core stops being a worker core.
    auto it = std::find(cores.begin(), cores.end(), config.dispatcher_core);
    if (it == cores.end()) {
      throw ConfigError(fmt::format("dispatcher core {} is not in the core list '{}'", config.dispatcher_core,
                                    format_core_list(cores)));
    }
    if (cores.size() < 2) {
      throw ConfigError(fmt::format("preempt={} with a dispatcher core needs at least one other core (core list '{}')",
                                    config.preempt, format_core_list(cores)));
    }
    cores.erase(it);
  }
  if (policy->needs_dispatcher()) {
    if (cores.size() < 2) {
      throw ConfigError(fmt::format(
          "policy '{}' needs a dispatcher core plus at least one worker core, but the core list '{}' has {}",
          config.policy, format_core_list(cores), cores.size()));
    }
    dispatcher = config.dispatcher_core < 0 ? cores.front() : config.dispatcher_core;
    auto it = std::find(cores.begin(), cores.end(), dispatcher);
    if (it == cores.end()) {
      throw ConfigError(fmt::format("dispatcher core {} is not in the core list '{}'", dispatcher,
                                    format_core_list(cores)));
    }
    cores.erase(it);
  }
  if (cores.size() > kMaxWorkers) {
    throw ConfigError(fmt::format("{} worker cores requested; at most {} are supported", cores.size(), kMaxWorkers));
  }
  if (this_worker() != nullptr) throw std::logic_error("skyloft: a Runtime cannot be created from inside a task");
  impl_->core = std::make_unique<RuntimeCore>(std::move(config), std::move(cores), dispatcher, std::move(policy),
                                              std::move(mech));
  RuntimeCore* expected = nullptr;
  if (!g_runtime.compare_exchange_strong(expected, impl_->core.get())) {
    throw std::logic_error("skyloft: a runtime is already running in this process (one per process)");
  }
  impl_->core->owner = this;
  impl_->core->start();
}

Runtime::~Runtime() {
  if (impl_ && impl_->core) shutdown();
}

ShutdownReport Runtime::shutdown() {
  if (this_worker() != nullptr) throw std::logic_error("skyloft: Runtime::shutdown() called from a task");
  ShutdownReport r = impl_->core->stop();
  RuntimeCore* expected = impl_->core.get();
  g_runtime.compare_exchange_strong(expected, nullptr);
  return r;
}

std::size_t Runtime::num_workers() const noexcept { return impl_->core->workers.size(); }

std::vector<int> Runtime::worker_cores() const {
  std::vector<int> cores;
  for (const auto& w : impl_->core->workers) cores.push_back(w->core);
  return cores;
}

int Runtime::dispatcher_core() const noexcept { return impl_->core->dispatcher_core; }

std::vector<WorkerStats> Runtime::stats() const {
  std::vector<WorkerStats> out;
  for (const auto& w : impl_->core->workers) {
    WorkerStats s;
    s.worker = w->index;
    s.core = w->core;
    s.tasks_run = w->tasks_run.get();
    s.switches = w->switches.get();
    s.steals = w->steals.get();
    s.parks = w->parks.get();
    s.idle_ns = w->idle_ns.get();
    s.spawned = w->spawned.get();
    s.exited = w->exited.get();
    s.preempt_checks = w->preempt_checks.get();
    s.preemptions = w->preemptions.get();
    s.preempt_deferred = w->preempt_deferred.get();
    out.push_back(s);
  }
  return out;
}

const Config& Runtime::config() const noexcept { return impl_->core->config; }
std::string_view Runtime::policy_name() const noexcept { return impl_->core->policy->name(); }
Policy& Runtime::policy() noexcept { return *impl_->core->policy; }

void Runtime::set_policy_param(std::string_view key, std::string_view value) {
  if (!impl_->core->policy->set_param(key, value)) {
    throw ConfigError(fmt::format("policy '{}' rejected parameter {}={}", impl_->core->policy->name(), key, value));
  }
}

void Runtime::dump(std::FILE* out) const {
  std::fprintf(out, "skyloft runtime: policy %.*s, %zu workers\n", static_cast<int>(policy_name().size()),
               policy_name().data(), num_workers());
  for (const WorkerStats& s : stats()) {
    std::fprintf(out,
                 "  worker %d (core %d): tasks_run %llu switches %llu steals %llu parks %llu idle %.3f ms "
                 "spawned %llu exited %llu preempt checks %llu preemptions %llu deferred %llu\n",
                 s.worker, s.core, static_cast<unsigned long long>(s.tasks_run),
                 static_cast<unsigned long long>(s.switches), static_cast<unsigned long long>(s.steals),
                 static_cast<unsigned long long>(s.parks), static_cast<double>(s.idle_ns) / 1e6,
                 static_cast<unsigned long long>(s.spawned), static_cast<unsigned long long>(s.exited),
                 static_cast<unsigned long long>(s.preempt_checks), static_cast<unsigned long long>(s.preemptions),
                 static_cast<unsigned long long>(s.preempt_deferred));
  }
  impl_->core->policy->dump(out);
}

Runtime* Runtime::current() noexcept {
  RuntimeCore* rt = current_runtime();
  return rt ? rt->owner : nullptr;
}

std::string ShutdownReport::describe() const {
  std::string s;
  if (!blocked.empty()) {
    s += fmt::format("skyloft: shutdown found {} task(s) blocked forever:\n", blocked.size());
    for (const auto& b : blocked) {
      s += fmt::format("  task {} waiting on {} at {}\n", b.id, to_string(b.reason), b.address);
    }
  }
  if (unjoined != 0) s += fmt::format("skyloft: {} finished task(s) were never joined or detached\n", unjoined);
  return s;
}

// ---- spawning and joining ----

namespace detail {

[[noreturn]] void throw_pin_without_core() {
  throw ConfigError("SpawnOptions::pin needs SpawnOptions::core: the core to pin the task to");
}

Task* task_allocate(const SpawnOptions& opts, std::size_t size, std::size_t align, void** payload) {
  RuntimeCore* rt = current_runtime();
  if (rt == nullptr) throw std::logic_error("skyloft::spawn: no runtime is running");
  const StackRequest stack = rt->stacks.request(opts.stack_size, opts.guard);
  const std::size_t usable = stack.size;
  int target = rt->worker_for_core(opts.core);
  if (opts.pin && target < 0) throw_pin_without_core();
  if (opts.nice < -20 || opts.nice > 19) {
    throw ConfigError(fmt::format("nice {} is out of range (-20..19)", opts.nice));
  }
  if (size > usable / 2) {
    throw ConfigError(fmt::format("the spawned callable is {} bytes; it must fit in half the task stack ({} bytes)",
                                  size, usable / 2));
  }
  RuntimeSection section;  // the worker's stack cache and id block are owner-only state
  Worker* w = this_worker();
  StackMapping m = rt->stacks.allocate(stack, w ? w->index : -1);
  auto top = reinterpret_cast<std::uintptr_t>(m.base) + m.size;
  auto task_addr = (top - sizeof(Task)) & ~std::uintptr_t{63};
  Task* t = ::new (reinterpret_cast<void*>(task_addr)) Task;  // default-init: members carry their own initialisers
  std::uintptr_t al = std::max<std::size_t>(align, 16);
  auto payload_addr = (task_addr - size) & ~(al - 1);
  *payload = reinterpret_cast<void*>(payload_addr);
  t->payload = *payload;
  t->stack = m;
  t->target_worker = target;
  t->runtime_epoch = rt->epoch;
  t->sched.id = rt->allocate_task_id(w);
  t->sched.spawn_worker = w ? w->index : -1;
  if (opts.pin) t->sched.pinned_worker = target;
  t->sched.nice = opts.nice;
  void* lo = m.lo;
  arch::make_context(t->ctx, lo, reinterpret_cast<void*>(payload_addr), &task_entry, t);
  return t;
}

void task_discard(Task* task) noexcept {
  RuntimeSection section;
  RuntimeCore* rt = current_runtime();
  Worker* w = this_worker();
  arch::destroy_context(task->ctx);
  StackMapping m = task->stack;
  task->~Task();
  rt->stacks.release(m, w ? w->index : -1);
}

void task_launch(Task* task, TaskBody body) noexcept {
  RuntimeSection section;
  RuntimeCore* rt = current_runtime();
  Worker* w = this_worker();  // not the spawner recorded earlier: the task may have moved since
  task->body = body;
  rt->policy->task_init(task);
  if (w != nullptr) {
    w->spawned.add();
  } else {
    rt->external_spawned.fetch_add(1, std::memory_order_release);
  }
  rt->policy->spawn(task, w ? w->index : -1, task->target_worker);
}

void task_join(Task* task, std::uint64_t epoch) {
  RuntimeCore* rt = current_runtime();
  if (rt == nullptr || rt->epoch != epoch) throw std::logic_error("skyloft: join() after its runtime shut down");
  RuntimeSection section;
  Task* self = current_task();
  if (self != nullptr) task->joiner = self;
  std::uint32_t expected = kJoinRunning;
  if (!task->join_state.compare_exchange_strong(expected, self ? kJoinTaskWaiting : kJoinThreadWaiting,
                                                std::memory_order_acq_rel)) {
    rt->zombies.fetch_sub(1, std::memory_order_relaxed);  // it had exited already, unjoined
  } else if (self != nullptr) {
    while (task->join_state.load(std::memory_order_acquire) != kJoinExited) task_park(WaitReason::join);
  } else {
    while (task->join_state.load(std::memory_order_acquire) != kJoinExited) {
      wait_address(task->join_state, kJoinThreadWaiting, kNoDeadline, WaitReason::join);
    }
  }
  task_free(task, this_worker());
}

void task_detach(Task* task, std::uint64_t epoch) noexcept {
  RuntimeCore* rt = current_runtime();
  if (rt == nullptr || rt->epoch != epoch) return;  // its runtime already reclaimed it
  if (task->join_state.exchange(kJoinDetached, std::memory_order_acq_rel) == kJoinExited) {
    rt->zombies.fetch_sub(1, std::memory_order_relaxed);
    task_free(task, this_worker());
  }
}

}  // namespace detail

JoinHandle spawn_prepared(Task* task, detail::TaskBody body) noexcept {
  JoinHandle h(task, task->sched.id, task->runtime_epoch);
  detail::task_launch(task, body);
  return h;
}

void JoinHandle::join() {
  if (task_ == nullptr) throw std::logic_error("skyloft::JoinHandle::join: not joinable");
  if (current_task() == task_) throw std::logic_error("skyloft::JoinHandle::join: a task cannot join itself");
  detail::task_join(std::exchange(task_, nullptr), epoch_);
}

}  // namespace skyloft
