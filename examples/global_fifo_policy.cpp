// global_fifo_policy.cpp - see global_fifo_policy.hpp. The queue is intrusive (SchedInfo::next), so no op
// allocates; its lock is a leaf spinlock, as the contract requires of a lock taken under the wait table's.
#include "global_fifo_policy.hpp"

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>

#include "skyloft/policy.hpp"
#include "skyloft/spinlock.hpp"

namespace skyloft_examples {
namespace {

using skyloft::Task;
using skyloft::sched_of;

using skyloft::SpinLock;  // yields its core when the holder was descheduled (see its header)

class GlobalFifoPolicy final : public skyloft::Policy {
 public:
  void spawn(Task* t, int, int) override { push(t); }
  void wakeup(Task* t, int) override { push(t); }
  void yield(Task* t, int) override { push(t); }

  Task* pick_next(int) override {
    if (size_.load(std::memory_order_relaxed) == 0) return nullptr;
    std::lock_guard<SpinLock> g(lock_);
    Task* t = head_;
    if (t == nullptr) return nullptr;
    head_ = sched_of(t).next;
    if (head_ == nullptr) tail_ = nullptr;
    size_.store(size_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return t;
  }

  // Every queued task waits for every worker.
  std::uint32_t nr_waiting(int) const override { return size_.load(std::memory_order_relaxed); }
  void dump(std::FILE* out) const override { std::fprintf(out, "  global_fifo queue: %u waiting\n", nr_waiting(0)); }
  std::string_view name() const noexcept override { return "global_fifo"; }

 private:
  void push(Task* t) {
    sched_of(t).next = nullptr;
    {
      std::lock_guard<SpinLock> g(lock_);
      (tail_ != nullptr ? sched_of(tail_).next : head_) = t;
      tail_ = t;
      size_.store(size_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    // Any worker may run it: wake a parked one, and let busy ones time-slice (tickless preemption).
    host_->notify_work_available();
    for (int w = 0; w < host_->num_workers(); ++w) host_->task_waiting(w);
  }

  SpinLock lock_;
  Task* head_ = nullptr;  // protected by lock_
  Task* tail_ = nullptr;  // protected by lock_
  std::atomic<std::uint32_t> size_{0};  // written under lock_; read without it as a hint
};

}  // namespace

void register_global_fifo_policy() {
  static std::once_flag once;
  std::call_once(once, [] {
    skyloft::register_policy("global_fifo", [] { return std::make_unique<GlobalFifoPolicy>(); });
  });
}

}  // namespace skyloft_examples
