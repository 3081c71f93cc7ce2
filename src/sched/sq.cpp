// sq.cpp - "sq": one centralized FIFO queue fed to the workers by a dispatcher thread (Shinjuku-style
// c-FCFS). Every runnable task goes to the central queue; the dispatcher (poll) moves the head of the queue
// into the one-task mailbox of each worker whose mailbox is empty and kicks it. Workers take only from their
// mailbox. Core hints are ignored: placement is the dispatcher's job. With a preemption mechanism it is
// processor sharing: an overrunning task is yielded back to the tail of the central queue (the default
// tick), and the next one comes from the worker's mailbox.
#include <cstdio>
#include <memory>

#include "core/task.hpp"
#include "sched/placement.hpp"
#include "sched/run_queue.hpp"

namespace skyloft {
namespace {

class SqPolicy final : public Policy {
 public:
  void init(PolicyHost& host) override {
    Policy::init(host);
    mailboxes_ = std::make_unique<Mailbox[]>(static_cast<std::size_t>(host.num_workers()));
    num_workers_ = host.num_workers();
  }

  void spawn(Task* t, int worker, int) override { submit(t, worker); }
  void wakeup(Task* t, int worker) override { submit(t, worker); }
  void yield(Task* t, int worker) override {
    SKY_DEBUG_ASSERT(is_worker(worker, num_workers_));
    submit(t, worker);
  }

  Task* pick_next(int worker) override {
    SKY_DEBUG_ASSERT(is_worker(worker, num_workers_));
    Mailbox& m = mailboxes_[static_cast<std::size_t>(worker)];
    if (m.task.load(std::memory_order_relaxed) == nullptr) return nullptr;
    Task* t = m.task.exchange(nullptr, std::memory_order_acquire);
    // The dispatcher parks when every mailbox is full; an emptied mailbox with a backlog must wake it.
    if (!central_.empty()) host_->kick_dispatcher();
    return t;
  }

  bool poll() override {
    bool progress = false;
    for (int w = 0; w < num_workers_ && !central_.empty(); ++w) {
      Mailbox& m = mailboxes_[static_cast<std::size_t>(w)];
      if (m.task.load(std::memory_order_acquire) != nullptr) continue;
      Task* t = central_.pop();
      if (t == nullptr) break;
      m.task.store(t, std::memory_order_release);
      host_->task_waiting(w);  // if w is busy, its quantum must run: the mailbox task waits for it
      host_->kick(w);
      progress = true;
    }
    return progress;
  }

  // Tasks that wait for `worker`: the one in its mailbox, and the central queue that will refill it.
  std::uint32_t nr_waiting(int worker) const override {
    SKY_DEBUG_ASSERT(is_worker(worker, num_workers_));
    bool boxed = mailboxes_[static_cast<std::size_t>(worker)].task.load(std::memory_order_relaxed) != nullptr;
    return central_.size() + (boxed ? 1u : 0u);
  }

  void dump(std::FILE* out) const override {
    std::fprintf(out, "  sq central queue: %u\n", central_.size());
  }

  std::string_view name() const noexcept override { return "sq"; }
  bool needs_dispatcher() const noexcept override { return true; }

 private:
  struct alignas(64) Mailbox {
    std::atomic<Task*> task{nullptr};  // dispatcher stores into an empty box; the worker exchanges it out
  };

  void submit(Task* t, int caller) {
    check_task_op(t, caller, num_workers_);
    central_.push(t);
    host_->kick_dispatcher();
  }

  LockedTaskList central_;
  std::unique_ptr<Mailbox[]> mailboxes_;
  int num_workers_ = 0;
};

}  // namespace

std::unique_ptr<Policy> make_sq_policy() { return std::make_unique<SqPolicy>(); }

}  // namespace skyloft
