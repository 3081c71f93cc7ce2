// rr.cpp - "rr": per-CPU round robin with a time slice.
//
// Algorithm: every worker has a FIFO run queue (a TaskHeap ordered by enqueue sequence); spawns, wake-ups
// and yields join the tail, pick_next takes the head. tick() preempts the running task once it has run for
// `slice_us` since it was picked (slice 0, the default: at every tick, i.e. the preemption mechanism's
// quantum). Placement, pinning and balancing (an idle worker pulls half the busiest queue) come from
// PerCpuPolicy (per_cpu.hpp).
// wake_first (off by default): a woken task joins the front of the queue (behind earlier wakees, FIFO) and
// takes the core at the next tick, whatever the running task's slice. So a long slice (CPU-bound tasks
// rotate seldom: each rotation costs them their cache and, without user interrupts, a signal) goes with
// wake-ups served within one tick. A wakee that runs on is rotated like any other task.
// Limits: no priorities or weights (nice is ignored); a task that blocks early does not keep the rest of
// its slice; the slice is measured in wall-clock time from the pick, so time the kernel steals from the
// worker thread counts against the task.
#include <cstdint>
#include <memory>

#include "sched/per_cpu.hpp"
#include "sched/task_heap.hpp"

namespace skyloft {
namespace {

struct RrData {
  std::int64_t seq = 0;          // enqueue order; the front's wakees (wake_first) below every tail entry
  std::uint64_t picked_ns = 0;   // when the current slice started
  bool front = false;            // queued at the front as a wakee
};

struct RrParams {
  std::atomic<std::uint64_t> slice_ns{0};    // 0: preempt at every tick
  std::atomic<std::uint64_t> wake_first{0};  // 1: wakees join the front and preempt at the next tick
};

// Front seqs count up from here: FIFO among wakees, and all below the tail's (which count up from 0).
constexpr std::int64_t kFrontBase = INT64_MIN / 2;

class RrRq {
 public:
  template <class Owner>
  void init(const Owner& owner, int) {
    params_ = &owner.params();
  }
  void enqueue(Task* t, Enqueue why, std::uint64_t) {
    RrData& d = sched_of(t).as<RrData>();
    d.front = why == Enqueue::wakeup && param(params_->wake_first) != 0;
    d.seq = d.front ? kFrontBase + ++front_seq_ : ++seq_;
    fronts_ += d.front;
    queue_.push(t);
  }
  Task* pick(std::uint64_t now) {
    Task* t = leave(queue_.pop());
    if (t != nullptr) sched_of(t).as<RrData>().picked_ns = now;
    return t;
  }
  void put_prev(Task*, Stop, std::uint64_t) {}
  bool tick(Task* curr, std::uint64_t now) {
    if (fronts_ != 0) return true;  // wake_first: a wakee waits at the front
    return now - sched_of(curr).as<RrData>().picked_ns >= static_cast<std::uint64_t>(param(params_->slice_ns));
  }
  Task* steal(std::uint64_t) { return leave(queue_.remove_last_if([](Task* t) { return !is_pinned(t); })); }
  std::size_t size() const noexcept { return queue_.size(); }
  void reserve(std::size_t n) { queue_.reserve(n); }

 private:
  Task* leave(Task* t) noexcept {
    if (t != nullptr && sched_of(t).as<RrData>().front) {
      sched_of(t).as<RrData>().front = false;
      --fronts_;
    }
    return t;
  }

  const RrParams* params_ = nullptr;
  TaskHeap<ByKeyThenSeq<RrData, &RrData::seq>> queue_;
  std::int64_t seq_ = 0;
  std::int64_t front_seq_ = 0;
  std::uint32_t fronts_ = 0;  // queued wakees at the front
};

class RrPolicy final : public PerCpuPolicy<RrRq, RrParams> {
 public:
  bool set_param(std::string_view key, std::string_view value) override {
    if (key == "slice_us") return parse_us(value, 0, 10'000'000, params_.slice_ns);
    if (key == "wake_first") {
      if (value != "0" && value != "1") return false;
      params_.wake_first.store(value == "1" ? 1 : 0, std::memory_order_relaxed);
      return true;
    }
    return false;
  }
  std::string_view name() const noexcept override { return "rr"; }
};

}  // namespace

std::unique_ptr<Policy> make_rr_policy() { return std::make_unique<RrPolicy>(); }

}  // namespace skyloft
