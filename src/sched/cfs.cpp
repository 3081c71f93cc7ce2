// cfs.cpp - "cfs": per-CPU completely fair scheduling after Linux's CFS (before EEVDF).
//
// Algorithm: each task has a vruntime that advances by delta_exec * 1024 / weight (weight from nice via
// Linux's sched_prio_to_weight) whenever the queue accounts its running task (enqueue, tick, stop). Each
// worker's queue is a min-heap by vruntime with a monotonic min_vruntime = max(min_vruntime, min(running,
// leftmost)). pick_next takes the smallest vruntime. Placement: a new task starts at min_vruntime + one
// vslice (min_granularity at its weight); a waking task at max(own, min_vruntime - latency/2) (bounded
// sleeper credit); a task moving between workers keeps its vruntime relative to min_vruntime. yield sets
// the "skip buddy": the next pick prefers the second task when it is within one granularity of the
// yielder (so two yielders alternate while weighted shares hold). tick preempts when the running task has
// run for its slice = max(min_granularity, latency * w / W) (W: weights on this worker incl. the running
// one) and a queued task has a smaller vruntime. Parameters: latency_us (1000), min_granularity_us (100).
// Limits: no group scheduling, no wake-up preemption (a woken task waits for the next tick or yield), no
// load tracking: balance evens queue lengths, not weights; min_vruntime is read racily across workers when
// a task migrates (as Linux does).
#include <algorithm>
#include <memory>

#include "sched/per_cpu.hpp"
#include "sched/task_heap.hpp"
#include "sched/weights.hpp"

namespace skyloft {
namespace {

struct CfsData {
  std::int64_t vruntime = 0;
  std::uint64_t seq = 0;
  std::uint64_t exec_start = 0;   // accounted up to here
  std::uint64_t slice_start = 0;  // when it was picked
  std::uint32_t weight = 0;
  int home = -1;                  // queue its vruntime is relative to
};

inline CfsData& cfs(Task* t) noexcept { return sched_of(t).as<CfsData>(); }

struct CfsParams {
  std::atomic<std::uint64_t> latency_ns{1'000'000};
  std::atomic<std::uint64_t> min_granularity_ns{100'000};
};

class CfsRq;
using CfsBase = PerCpuPolicy<CfsRq, CfsParams>;

class CfsRq {
 public:
  void init(const CfsBase& owner, int index) {
    owner_ = &owner;
    index_ = index;
  }

  void enqueue(Task* t, Enqueue why, std::uint64_t now) {
    // A new task is placed against the spawner's vruntime as of its last accounting (pick or tick), so a
    // burst of spawns starts level however long the spawner takes between them.
    if (why != Enqueue::spawn) update_curr(now);
    CfsData& d = cfs(t);
    const std::int64_t min_v = min_vruntime_.load(std::memory_order_relaxed);
    if (why == Enqueue::spawn) {
      d.weight = nice_to_weight(sched_of(t).nice);
      d.vruntime = min_v + to_virtual(param(owner_->params().min_granularity_ns), d.weight);
    } else if (d.home != index_) {  // moved: keep its distance to min_vruntime
      d.vruntime += min_v - owner_->rq(d.home).min_vruntime_.load(std::memory_order_relaxed);
    }
    d.home = index_;
    if (why == Enqueue::wakeup) d.vruntime = std::max(d.vruntime, min_v - param(owner_->params().latency_ns) / 2);
    if (why == Enqueue::yield) skip_ = t;
    d.seq = ++seq_;
    weight_sum_ += d.weight;
    queue_.push(t);
    update_min();
  }

  Task* pick(std::uint64_t now) {
    Task* t = pop();
    if (t == skip_ && !queue_.empty()) {
      // Skip the yielder for the next task unless that one is more than a granularity ahead (Linux's
      // wakeup_preempt_entity(second, left) < 1).
      const std::int64_t gran = to_virtual(param(owner_->params().min_granularity_ns), cfs(t).weight);
      if (cfs(queue_.top()).vruntime - cfs(t).vruntime <= gran) {
        Task* yielder = t;
        t = pop();
        push_back(yielder);
      }
    }
    skip_ = nullptr;
    if (t != nullptr) {
      curr_ = t;
      cfs(t).exec_start = cfs(t).slice_start = now;
      update_min();
    }
    return t;
  }

  void put_prev(Task*, Stop, std::uint64_t now) {
    update_curr(now);
    curr_ = nullptr;
  }

  bool tick(Task* curr, std::uint64_t now) {
    update_curr(now);
    const CfsData& d = cfs(curr);
    const std::int64_t ran = static_cast<std::int64_t>(now - d.slice_start);
    const std::int64_t slice = std::max(param(owner_->params().min_granularity_ns),
                                        param(owner_->params().latency_ns) * d.weight / (weight_sum_ + d.weight));
    return ran >= slice && !queue_.empty() && cfs(queue_.top()).vruntime < d.vruntime;
  }

  Task* steal(std::uint64_t) {
    Task* t = queue_.remove_last_if([](Task* x) { return !is_pinned(x); });
    if (t != nullptr) weight_sum_ -= cfs(t).weight;
    return t;
  }

  std::size_t size() const noexcept { return queue_.size(); }
  void reserve(std::size_t n) { queue_.reserve(n); }

 private:
  Task* pop() {
    Task* t = queue_.pop();
    if (t != nullptr) weight_sum_ -= cfs(t).weight;
    return t;
  }
  void push_back(Task* t) {
    weight_sum_ += cfs(t).weight;
    queue_.push(t);
  }

  // Charges the running task for the time since it was last accounted.
  void update_curr(std::uint64_t now) {
    if (curr_ == nullptr) return;
    CfsData& d = cfs(curr_);
    d.vruntime += to_virtual(static_cast<std::int64_t>(now - d.exec_start), d.weight);
    d.exec_start = now;
    update_min();
  }

  void update_min() {
    std::int64_t m = min_vruntime_.load(std::memory_order_relaxed);
    std::int64_t lowest = INT64_MAX;
    if (curr_ != nullptr) lowest = cfs(curr_).vruntime;
    if (!queue_.empty()) lowest = std::min(lowest, cfs(queue_.top()).vruntime);
    if (lowest != INT64_MAX && lowest > m) min_vruntime_.store(lowest, std::memory_order_relaxed);
  }

  const CfsBase* owner_ = nullptr;
  int index_ = 0;
  TaskHeap<ByKeyThenSeq<CfsData, &CfsData::vruntime>> queue_;
  std::int64_t weight_sum_ = 0;  // queued tasks only
  Task* curr_ = nullptr;         // the running task of this worker
  Task* skip_ = nullptr;         // the last yielder (compared, never dereferenced)
  std::uint64_t seq_ = 0;
  std::atomic<std::int64_t> min_vruntime_{0};  // read by other workers when a task migrates
};

class CfsPolicy final : public CfsBase {
 public:
  bool set_param(std::string_view key, std::string_view value) override {
    if (key == "latency_us") return parse_us(value, 1, 10'000'000, params_.latency_ns);
    if (key == "min_granularity_us") return parse_us(value, 1, 10'000'000, params_.min_granularity_ns);
    return false;
  }
  std::string_view name() const noexcept override { return "cfs"; }
};

}  // namespace

std::unique_ptr<Policy> make_cfs_policy() { return std::make_unique<CfsPolicy>(); }

}  // namespace skyloft
