// app_gate.cpp - the policy a runtime under a daemon runs: the configured policy, gated by the core's
// ownership (app_core.hpp O4). While a processor does not own its core, or is giving it away, it picks and
// steals nothing and every preemption check says "preempt", so the running task goes back to the policy
// (yield) and the thread returns to its loop to hand the core over. Everything else is the inner policy's.
// Standalone runtimes never see this class: the gate costs nothing without a daemon.
#include <memory>

#include "core/app_core.hpp"
#include "skyloft/policy.hpp"

namespace skyloft {

namespace {

class AppGatePolicy final : public Policy {
 public:
  AppGatePolicy(std::unique_ptr<Policy> inner, AppLink& link) : inner_(std::move(inner)), link_(link) {}

  void task_init(Task* t) override { inner_->task_init(t); }
  void task_finish(Task* t, int w) override { inner_->task_finish(t, w); }
  void spawn(Task* t, int w, int target) override { inner_->spawn(t, w, target); }
  void wakeup(Task* t, int w) override { inner_->wakeup(t, w); }
  void yield(Task* t, int w) override { inner_->yield(t, w); }
  void block(Task* t, int w) override { inner_->block(t, w); }
  Task* pick_next(int w) override { return gated(w) ? nullptr : inner_->pick_next(w); }
  bool tick(int w, Task* cur) override { return gated(w) || inner_->tick(w, cur); }
  std::uint32_t nr_waiting(int w) const override { return inner_->nr_waiting(w); }
  Task* balance(int w) override { return gated(w) ? nullptr : inner_->balance(w); }
  bool poll() override { return inner_->poll(); }
  void init(PolicyHost& host) override {
    host_ = &host;
    inner_->init(host);
  }
  void init_worker(int w) override { inner_->init_worker(w); }
  bool set_param(std::string_view key, std::string_view value) override { return inner_->set_param(key, value); }
  void dump(std::FILE* f) const override { inner_->dump(f); }
  std::string_view name() const noexcept override { return inner_->name(); }
  bool needs_dispatcher() const noexcept override { return inner_->needs_dispatcher(); }

 private:
  // Only the worker's own thread calls pick_next/tick/balance, and only it writes its AppCore's state.
  bool gated(int w) const noexcept { return link_.cores[static_cast<std::size_t>(w)]->gated(); }

  std::unique_ptr<Policy> inner_;
  AppLink& link_;
};

}  // namespace

std::unique_ptr<Policy> make_app_gate(std::unique_ptr<Policy> inner, AppLink& link) {
  return std::make_unique<AppGatePolicy>(std::move(inner), link);
}

}  // namespace skyloft
