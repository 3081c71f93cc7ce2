// api.cpp - describing a running runtime: topology, stats, policy parameters, dumps.
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "core/runtime_core.hpp"
#include "runtime/runtime_impl.hpp"

namespace skyloft {

std::size_t Runtime::num_workers() const noexcept { return impl_->core->procs.size(); }

std::vector<int> Runtime::worker_cores() const {
  std::vector<int> cores;
  for (const auto& p : impl_->core->procs) cores.push_back(p->core);
  return cores;
}

int Runtime::dispatcher_core() const noexcept { return impl_->core->dispatcher_core; }

std::vector<WorkerStats> Runtime::stats() const {
  std::vector<WorkerStats> out;
  for (const auto& w : impl_->core->procs) {
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
    s.handoffs = w->handoffs.get();
    s.escapes = w->escapes.get();
    s.io_nudges = w->io_nudges.load(std::memory_order_relaxed);
    out.push_back(s);
  }
  return out;
}

int Runtime::add_poller(void (*fn)(void* arg, std::uint64_t now_ns), void* arg) {
  RuntimeCore& rt = *impl_->core;
  if (fn == nullptr) throw ConfigError("add_poller: the function is null");
  if (!rt.pollers.attached()) {
    throw ConfigError(fmt::format("add_poller: policy '{}' with preempt '{}' has no polling thread; pollers run on a "
                                  "centralized policy's dispatcher (sq) or on a ticker with a core of its own "
                                  "(preempt dispatcher/flag/hybrid and a dispatcher core)",
                                  rt.policy->name(), rt.config.preempt));
  }
  const int id = rt.pollers.add(fn, arg);
  if (id < 0) throw ConfigError(fmt::format("add_poller: all {} poller slots are taken", PollerSet::kMaxPollers));
  return id;
}

void Runtime::remove_poller(int id) noexcept { impl_->core->pollers.remove(id); }

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
                 "spawned %llu exited %llu preempt checks %llu preemptions %llu deferred %llu handoffs %llu\n",
                 s.worker, s.core, static_cast<unsigned long long>(s.tasks_run),
                 static_cast<unsigned long long>(s.switches), static_cast<unsigned long long>(s.steals),
                 static_cast<unsigned long long>(s.parks), static_cast<double>(s.idle_ns) / 1e6,
                 static_cast<unsigned long long>(s.spawned), static_cast<unsigned long long>(s.exited),
                 static_cast<unsigned long long>(s.preempt_checks), static_cast<unsigned long long>(s.preemptions),
                 static_cast<unsigned long long>(s.preempt_deferred), static_cast<unsigned long long>(s.handoffs));
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

}  // namespace skyloft
