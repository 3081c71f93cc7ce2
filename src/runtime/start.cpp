// start.cpp - creating the runtime: validating the configuration, resolving cores, wiring the policy and
// the preemption mechanism to the core, and starting the runtime's threads.
//
// Start order: fault and preemption signal handlers, policy init (it sees the processors), mechanism start,
// the I/O pollers (io_start), under a daemon each processor's share of its core (attach_app_cores), one
// kernel thread per processor, the monitor (with one spare thread ready for the first hand-off), and
// the dispatcher of a centralized policy. Stopping is in shutdown.cpp.
#include <signal.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "core/fair_slice.hpp"
#include "core/app_core.hpp"
#include "core/fault.hpp"
#include "core/kthread.hpp"
#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "core/sysmon.hpp"
#include "io/poller.hpp"
#include "preempt/mechanism.hpp"
#include "preempt/safe_point.hpp"
#include "runtime/runtime_impl.hpp"

namespace skyloft {

Runtime::Impl::Impl() = default;
Runtime::Impl::~Impl() = default;

void start_runtime(RuntimeCore& rt, AppLink* app) {
  install_fault_handler();
  set_no_preempt_libs(rt.config.no_preempt_libs);
  install_preempt_handler(rt.config.preempt_signal);
  rt.policy->init(rt);
  rt.preempt->start(rt);
  io_start(rt);  // every processor's I/O poller, before the processors run (p->io is read-only after)
  if (kMultiApp && app != nullptr) attach_app_cores(rt, *app);  // after io_start: the shared-word park backend wins
  for (auto& p : rt.procs) rt.new_kthread(p.get());
  if (rt.config.handoff_us != 0) {
    rt.new_kthread(nullptr);  // a spare, ready for the first hand-off
    rt.sysmon = std::make_unique<Sysmon>(rt);
    rt.sysmon->start();
  } else if (rt.config.stall_ms != 0) {
    rt.sysmon = std::make_unique<Sysmon>(rt);
    rt.sysmon->start();
  }
  if (rt.policy->needs_dispatcher()) {
    rt.pollers.attach(&rt.dispatcher_park);
    rt.dispatcher.start([](void* core) { dispatcher_loop(*static_cast<RuntimeCore*>(core)); }, &rt, "skyloft-disp");
  }
  if (rt.config.task_tls) task_tls_threads_started();
}


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

// Config::policy_params: "key=value[,key=value...]", each given to Policy::set_param before the start.
void apply_policy_params(Policy& policy, std::string_view text) {
  if (text.empty()) return;
  for (bool more = true; more;) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    more = comma != std::string_view::npos;  // "a=1," ends in an empty item, an error like any other
    if (more) text = text.substr(comma + 1);
    const std::size_t eq = item.find('=');
    if (item.empty() || eq == 0 || eq == std::string_view::npos || eq + 1 == item.size()) {
      throw ConfigError(fmt::format("policy_params (SKYLOFT_POLICY_PARAMS): '{}' is not key=value", item));
    }
    if (!policy.set_param(item.substr(0, eq), item.substr(eq + 1))) {
      throw ConfigError(fmt::format("policy '{}' rejected parameter {} (policy_params / SKYLOFT_POLICY_PARAMS)",
                                    policy.name(), item));
    }
  }
}

}  // namespace

Runtime::Runtime(Config config) : impl_(std::make_unique<Impl>()) {
  (void)now_ns();  // opens the TSC calibration window now; it closes in a later call, without waiting
  std::unique_ptr<Policy> policy = make_policy(config.policy);
  apply_policy_params(*policy, config.policy_params);
  config.stack_size = StackPool::validate_size(config.stack_size, config.stack_guard);
  if (config.spin_us > 1'000'000) {
    throw ConfigError(fmt::format("spin_us {} is out of range (0..1000000 microseconds)", config.spin_us));
  }
  std::unique_ptr<PreemptMechanism> mech =
      make_preempt_mechanism(config.preempt, config.quantum_us, config.hybrid_grace_us);
  validate_preempt_signal(config.preempt_signal);
  if (config.worker_slice_us != 0 &&
      (config.worker_slice_us < fair_slice::kMinUs || config.worker_slice_us > fair_slice::kMaxUs)) {
    throw ConfigError(fmt::format("worker slice {} us (Config::worker_slice_us / SKYLOFT_WORKER_SLICE_US) is out of "
                                  "range: 0 (the kernel's default) or {}..{} microseconds",
                                  config.worker_slice_us, fair_slice::kMinUs, fair_slice::kMaxUs));
  }
  validate_no_preempt_libs(config.no_preempt_libs);
  std::unique_ptr<AppLink> app;
  std::vector<int> cores;
  if (config.daemon) {
    if constexpr (!kMultiApp) {
      throw ConfigError(fmt::format("daemon '{}' (Config::daemon / SKYLOFT_DAEMON): this build has no multi-app "
                                    "layer (SKYLOFT_MULTI_APP=OFF); rebuild with it ON to run under skyloftd",
                                    *config.daemon));
    }
    // Under a daemon the cores are the daemon's; a centralized policy or a ticker core would need one of
    // them for good, which the Single Binding Rule cannot give.
    if (config.cores) {
      throw ConfigError(fmt::format("core list '{}' and daemon '{}' exclude each other: under a daemon the "
                                    "cores are the ones skyloftd grants (unset SKYLOFT_CORES / Config::cores)",
                                    *config.cores, *config.daemon));
    }
    if (policy->needs_dispatcher()) {
      throw ConfigError(fmt::format("policy '{}' needs a dispatcher core of its own, which a daemon's shared cores "
                                    "cannot give: choose a per-worker policy under a daemon",
                                    config.policy));
    }
    if (config.dispatcher_core >= 0) {
      throw ConfigError(fmt::format("dispatcher core {} cannot be used under a daemon (its cores are shared)",
                                    config.dispatcher_core));
    }
    if (!config.pin_workers) {
      throw ConfigError(fmt::format("unpinned workers (pin_workers off / SKYLOFT_PIN_WORKERS=0) cannot run under "
                                    "daemon '{}': the Single Binding Rule gives each worker one core",
                                    *config.daemon));
    }
    app = join_daemon(config);
    cores = app->cpus;
    policy = make_app_gate(std::move(policy), *app);
  } else {
    cores = resolve_cores(config);
  }
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
  if (config.handoff_us > 1'000'000) {
    throw ConfigError(fmt::format("handoff_us {} is out of range (0..1000000 microseconds; 0 turns the hand-off off)",
                                  config.handoff_us));
  }
  if (config.stall_ms > 3'600'000) {
    throw ConfigError(fmt::format("stall_ms {} is out of range (0..3600000; 0 turns the watchdog off)", config.stall_ms));
  }
  io_validate_backend(config.io_backend);
  if (config.task_tls) {
#if SKY_ASAN || SKY_TSAN
    throw ConfigError("task_tls is not available in sanitizer builds: AddressSanitizer and ThreadSanitizer keep "
                      "their per-thread state in the thread's TLS, which a per-task block would hide");
#else
    if (std::string why = task_tls_prepare(); !why.empty()) throw ConfigError("task_tls: " + why);
#endif
  }
  if (cores.size() > kMaxWorkers) {
    throw ConfigError(fmt::format("{} worker cores requested; at most {} are supported", cores.size(), kMaxWorkers));
  }
  if (this_proc() != nullptr) throw std::logic_error("skyloft: a Runtime cannot be created from inside a task");
  impl_->core = std::make_unique<RuntimeCore>(std::move(config), std::move(cores), dispatcher, std::move(policy),
                                              std::move(mech));
  RuntimeCore* expected = nullptr;
  if (!g_runtime.compare_exchange_strong(expected, impl_->core.get())) {
    throw std::logic_error("skyloft: a runtime is already running in this process (one per process)");
  }
  impl_->core->owner = this;
  impl_->app = std::move(app);
  start_runtime(*impl_->core, impl_->app.get());
}

Runtime::~Runtime() {
  if (impl_ && impl_->core) shutdown();
}

ShutdownReport Runtime::shutdown() {
  if (this_proc() != nullptr) throw std::logic_error("skyloft: Runtime::shutdown() called from a task");
  ShutdownReport r = stop_runtime(*impl_->core);
  if (impl_->app) leave_daemon(*impl_->app);  // every thread has stopped: the daemon may hand our cores on
  RuntimeCore* expected = impl_->core.get();
  g_runtime.compare_exchange_strong(expected, nullptr);
  return r;
}

}  // namespace skyloft
