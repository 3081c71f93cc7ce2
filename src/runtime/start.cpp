// start.cpp - creating the runtime: validating the configuration, resolving cores, wiring the policy and
// the preemption mechanism to the core, and starting the runtime's threads.
//
// Start order: fault and preemption signal handlers, policy init (it sees the processors), mechanism start,
// the I/O pollers (io_start), one kernel thread per processor, the monitor (with one spare thread ready for the first hand-off), and
// the dispatcher of a centralized policy. Stopping is in shutdown.cpp.
#include <signal.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

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

void start_runtime(RuntimeCore& rt) {
  install_fault_handler();
  set_no_preempt_libs(rt.config.no_preempt_libs);
  install_preempt_handler(rt.config.preempt_signal);
  rt.policy->init(rt);
  rt.preempt->start(rt);
  io_start(rt);  // every processor's I/O poller, before the processors run (p->io is read-only after)
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
    rt.dispatcher.start([](void* core) { dispatcher_loop(*static_cast<RuntimeCore*>(core)); }, &rt, "skyloft-disp");
  }
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
  validate_preempt_signal(config.preempt_signal);
  validate_no_preempt_libs(config.no_preempt_libs);
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
  if (config.daemon) {
    // The daemon side (skyloftd, the shared region, the client) exists; the runtime's half of the
    // Single Binding Rule (core hand-over between applications at the poll point) does not yet.
    throw ConfigError(fmt::format("daemon '{}': joining a skyloftd is not implemented in the runtime yet; "
                                  "unset SKYLOFT_DAEMON / Config::daemon to run standalone",
                                  *config.daemon));
  }
  if (config.handoff_us > 1'000'000) {
    throw ConfigError(fmt::format("handoff_us {} is out of range (0..1000000 microseconds; 0 turns the hand-off off)",
                                  config.handoff_us));
  }
  if (config.stall_ms > 3'600'000) {
    throw ConfigError(fmt::format("stall_ms {} is out of range (0..3600000; 0 turns the watchdog off)", config.stall_ms));
  }
  io_validate_backend(config.io_backend);
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
  start_runtime(*impl_->core);
}

Runtime::~Runtime() {
  if (impl_ && impl_->core) shutdown();
}

ShutdownReport Runtime::shutdown() {
  if (this_proc() != nullptr) throw std::logic_error("skyloft: Runtime::shutdown() called from a task");
  ShutdownReport r = stop_runtime(*impl_->core);
  RuntimeCore* expected = impl_->core.get();
  g_runtime.compare_exchange_strong(expected, nullptr);
  return r;
}

}  // namespace skyloft
