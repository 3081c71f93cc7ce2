// eevdf.cpp - "eevdf": per-CPU earliest eligible virtual deadline first, after Linux 6.6+.
//
// Algorithm: a task's vruntime v advances by delta_exec * 1024 / weight (nice -> Linux weight table). Each
// worker's queue has the weighted average vruntime V = sum(w*v) / sum(w) (its running task included). A
// task is eligible when its lag V - v >= 0 (it received no more than its share). Each task has a request of
// `slice_us` (100) CPU time and the virtual deadline vd = ve + slice * 1024 / weight, where ve is the v at
// which the request started; once v reaches vd the request is used up and a new one starts (vd = v + vslice).
// pick_next takes the eligible task with the earliest deadline. The queue is two heaps: ineligible tasks by
// v, eligible ones by deadline; a pick moves tasks across at the current V (O(log n) amortized).
// Placement (Linux place_entity): v = V - lag * (W + w) / W, with lag 0 for a new task (whose first request
// is half a slice) and for a waking or migrating task the lag it had when it left (V - v, clamped to two
// vslices). tick preempts once the running task has used its request and another task is eligible.
// A yield keeps the request; the next pick prefers the best other task unless that one is more than one of
// its vslices behind V (so yielders alternate, and weighted shares hold within a slice).
// Limits: no group scheduling, no wake-up preemption, no per-task slices (one slice for all); balance
// evens queue lengths, not weights.
#include <algorithm>
#include <memory>

#include "sched/per_cpu.hpp"
#include "sched/task_heap.hpp"
#include "sched/weights.hpp"

namespace skyloft {
namespace {

struct EevdfData {
  std::int64_t vruntime = 0;
  std::int64_t deadline = 0;
  std::int64_t lag = 0;           // V - v when it left a queue (block, migration)
  std::uint64_t seq = 0;
  std::uint64_t exec_start = 0;   // accounted up to here
  std::int64_t weight = 0;
};

inline EevdfData& ev(Task* t) noexcept { return sched_of(t).as<EevdfData>(); }

struct EevdfParams {
  std::atomic<std::uint64_t> slice_ns{100'000};
};

class EevdfRq {
 public:
  template <class Owner>
  void init(const Owner& owner, int) {
    params_ = &owner.params();
  }

  void enqueue(Task* t, Enqueue why, std::uint64_t now) {
    // A new task is placed against the spawner's vruntime as of its last accounting (pick or tick), so a
    // burst of spawns starts level however long the spawner takes between them.
    if (why != Enqueue::spawn) update_curr(now);
    EevdfData& d = ev(t);
    if (why == Enqueue::yield) {
      skip_ = t;
    } else {
      if (why == Enqueue::spawn) d.weight = nice_to_weight(sched_of(t).nice);
      place(d, why == Enqueue::spawn);
    }
    d.seq = ++seq_;
    insert(t);
  }

  Task* pick(std::uint64_t now) {
    const std::int64_t v_avg = avg();
    Task* t = take_best(v_avg);
    if (t != nullptr && t == skip_ && size() != 0) {
      Task* other = take_best(avg());
      if (ev(other).vruntime - v_avg <= vslice(ev(other))) std::swap(t, other);
      insert(other);
    }
    skip_ = nullptr;
    slice_used_ = false;
    if (t != nullptr) {
      curr_ = t;
      ev(t).exec_start = now;
    }
    return t;
  }

  void put_prev(Task* t, Stop why, std::uint64_t now) {
    update_curr(now);
    if (why != Stop::yield) ev(t).lag = clamped_lag(ev(t), avg());
    curr_ = nullptr;
  }

  bool tick(Task*, std::uint64_t now) {
    update_curr(now);
    if (!slice_used_) return false;
    slice_used_ = false;
    refresh(avg());
    return !eligible_.empty();
  }

  Task* steal(std::uint64_t now) {
    update_curr(now);
    auto movable = [](Task* x) { return !is_pinned(x); };
    Task* t = ineligible_.remove_last_if(movable);
    if (t == nullptr) t = eligible_.remove_last_if(movable);
    if (t != nullptr) {
      ev(t).lag = clamped_lag(ev(t), avg());
      remove_sums(t);
    }
    return t;
  }

  std::size_t size() const noexcept { return eligible_.size() + ineligible_.size(); }
  void reserve(std::size_t n) {
    eligible_.reserve(n);
    ineligible_.reserve(n);
  }

 private:
  std::int64_t vslice(const EevdfData& d) const noexcept { return to_virtual(param(params_->slice_ns), d.weight); }

  std::int64_t clamped_lag(const EevdfData& d, std::int64_t v_avg) const noexcept {
    const std::int64_t limit = 2 * vslice(d);
    return std::clamp(v_avg - d.vruntime, -limit, limit);
  }

  // V over the queued tasks and the running one; the last value when the worker has none.
  std::int64_t avg() {
    __int128 sum = sum_wv_;
    std::int64_t w = sum_w_;
    if (curr_ != nullptr) {
      sum += static_cast<__int128>(ev(curr_).weight) * ev(curr_).vruntime;
      w += ev(curr_).weight;
    }
    if (w > 0) last_avg_ = static_cast<std::int64_t>(sum / w);
    return last_avg_;
  }

  void place(EevdfData& d, bool initial) {
    const std::int64_t load = sum_w_ + (curr_ != nullptr ? ev(curr_).weight : 0);
    std::int64_t lag = d.lag;
    if (load > 0) lag = static_cast<std::int64_t>(static_cast<__int128>(lag) * (load + d.weight) / load);
    d.vruntime = avg() - lag;
    d.deadline = d.vruntime + (initial ? vslice(d) / 2 : vslice(d));
    d.lag = 0;
  }

  // Charges the running task; starts a new request when it has used the current one.
  void update_curr(std::uint64_t now) {
    if (curr_ == nullptr) return;
    EevdfData& d = ev(curr_);
    d.vruntime += to_virtual(static_cast<std::int64_t>(now - d.exec_start), d.weight);
    d.exec_start = now;
    if (d.vruntime >= d.deadline) {
      d.deadline = d.vruntime + vslice(d);
      slice_used_ = true;
    }
  }

  void insert(Task* t) {
    sum_w_ += ev(t).weight;
    sum_wv_ += static_cast<__int128>(ev(t).weight) * ev(t).vruntime;
    ineligible_.push(t);
  }
  void remove_sums(Task* t) {
    sum_w_ -= ev(t).weight;
    sum_wv_ -= static_cast<__int128>(ev(t).weight) * ev(t).vruntime;
  }

  // Moves tasks between the heaps so that the top of eligible_ is eligible at V (stale entries below the
  // top surface later and are moved then).
  void refresh(std::int64_t v_avg) {
    while (!ineligible_.empty() && ev(ineligible_.top()).vruntime <= v_avg) eligible_.push(ineligible_.pop());
    while (!eligible_.empty() && ev(eligible_.top()).vruntime > v_avg) ineligible_.push(eligible_.pop());
  }

  // Removes the eligible task with the earliest deadline (the smallest v if rounding left none eligible).
  Task* take_best(std::int64_t v_avg) {
    refresh(v_avg);
    Task* t = !eligible_.empty() ? eligible_.pop() : ineligible_.pop();
    if (t != nullptr) remove_sums(t);
    return t;
  }

  const EevdfParams* params_ = nullptr;
  TaskHeap<ByKeyThenSeq<EevdfData, &EevdfData::deadline>> eligible_;
  TaskHeap<ByKeyThenSeq<EevdfData, &EevdfData::vruntime>> ineligible_;
  std::int64_t sum_w_ = 0;    // queued tasks only
  __int128 sum_wv_ = 0;       // sum of weight * vruntime over queued tasks
  std::int64_t last_avg_ = 0;
  Task* curr_ = nullptr;      // the running task of this worker
  Task* skip_ = nullptr;      // the last yielder (compared, never dereferenced)
  bool slice_used_ = false;   // curr_ started a new request since it was picked or last ticked
  std::uint64_t seq_ = 0;
};

class EevdfPolicy final : public PerCpuPolicy<EevdfRq, EevdfParams> {
 public:
  bool set_param(std::string_view key, std::string_view value) override {
    if (key == "slice_us") return parse_us(value, 1, 10'000'000, params_.slice_ns);
    return false;
  }
  std::string_view name() const noexcept override { return "eevdf"; }
};

}  // namespace

std::unique_ptr<Policy> make_eevdf_policy() { return std::make_unique<EevdfPolicy>(); }

}  // namespace skyloft
