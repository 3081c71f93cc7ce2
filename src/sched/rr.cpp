// rr.cpp - "rr": per-CPU round robin with a time slice.
//
// Algorithm: every worker has a FIFO run queue (a TaskHeap ordered by enqueue sequence); spawns, wake-ups
// and yields join the tail, pick_next takes the head. tick() preempts the running task once it has run for
// `slice_us` since it was picked (slice 0, the default: at every tick, i.e. the preemption mechanism's
// quantum). Placement, pinning and balancing (an idle worker pulls half the busiest queue) come from
// PerCpuPolicy (per_cpu.hpp).
// Limits: no priorities or weights (nice is ignored); a task that blocks early does not keep the rest of
// its slice; the slice is measured in wall-clock time from the pick, so time the kernel steals from the
// worker thread counts against the task.
#include <memory>

#include "sched/per_cpu.hpp"
#include "sched/task_heap.hpp"

namespace skyloft {
namespace {

struct RrData {
  std::uint64_t seq = 0;         // enqueue order
  std::uint64_t picked_ns = 0;   // when the current slice started
};

struct RrParams {
  std::atomic<std::uint64_t> slice_ns{0};  // 0: preempt at every tick
};

class RrRq {
 public:
  template <class Owner>
  void init(const Owner& owner, int) {
    params_ = &owner.params();
  }
  void enqueue(Task* t, Enqueue, std::uint64_t) {
    sched_of(t).as<RrData>().seq = ++seq_;
    queue_.push(t);
  }
  Task* pick(std::uint64_t now) {
    Task* t = queue_.pop();
    if (t != nullptr) sched_of(t).as<RrData>().picked_ns = now;
    return t;
  }
  void put_prev(Task*, Stop, std::uint64_t) {}
  bool tick(Task* curr, std::uint64_t now) {
    return now - sched_of(curr).as<RrData>().picked_ns >= static_cast<std::uint64_t>(param(params_->slice_ns));
  }
  Task* steal(std::uint64_t) { return queue_.remove_last_if([](Task* t) { return !is_pinned(t); }); }
  std::size_t size() const noexcept { return queue_.size(); }
  void reserve(std::size_t n) { queue_.reserve(n); }

 private:
  const RrParams* params_ = nullptr;
  TaskHeap<ByKeyThenSeq<RrData, &RrData::seq>> queue_;
  std::uint64_t seq_ = 0;
};

class RrPolicy final : public PerCpuPolicy<RrRq, RrParams> {
 public:
  bool set_param(std::string_view key, std::string_view value) override {
    if (key == "slice_us") return parse_us(value, 0, 10'000'000, params_.slice_ns);
    return false;
  }
  std::string_view name() const noexcept override { return "rr"; }
};

}  // namespace

std::unique_ptr<Policy> make_rr_policy() { return std::make_unique<RrPolicy>(); }

}  // namespace skyloft
