// task_heap.hpp - an array-backed binary min-heap of tasks, the ordered run queue of the per-CPU policies
// (rr orders by enqueue sequence, cfs by vruntime, eevdf by virtual deadline and by vruntime).
//
// `Less` is a stateless comparator over Task* that reads the keys from the tasks' SchedInfo::data. Callers
// synchronize (the heap lives under its run queue's lock). push/pop/remove_at are O(log n). push allocates
// only past the reserved room; the per-CPU policies keep room for every live task (per_cpu.hpp), so their
// ops never allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/fatal.hpp"
#include "skyloft/policy.hpp"

namespace skyloft {

template <class Less>
class TaskHeap {
 public:
  void reserve(std::size_t n) { v_.reserve(n); }
  bool empty() const noexcept { return v_.empty(); }
  std::size_t size() const noexcept { return v_.size(); }
  Task* top() const noexcept { return v_.empty() ? nullptr : v_.front(); }

  void push(Task* t) {
    SKY_DEBUG_ASSERT(t != nullptr);
    v_.push_back(t);
    up(v_.size() - 1);
  }
  Task* pop() noexcept { return v_.empty() ? nullptr : remove_at(0); }

  // Removes the last task in array order (a leaf: among the least urgent) for which pred(task) holds, or
  // returns nullptr. O(n) scan, meant for stealing.
  template <class Pred>
  Task* remove_last_if(Pred pred) noexcept {
    for (std::size_t i = v_.size(); i-- > 0;) {
      if (pred(v_[i])) return remove_at(i);
    }
    return nullptr;
  }

 private:
  Task* remove_at(std::size_t i) noexcept {
    Task* t = v_[i];
    v_[i] = v_.back();
    v_.pop_back();
    if (i < v_.size()) {
      down(i);
      up(i);
    }
    return t;
  }
  void up(std::size_t i) noexcept {
    while (i > 0) {
      std::size_t p = (i - 1) / 2;
      if (!Less{}(v_[i], v_[p])) break;
      std::swap(v_[i], v_[p]);
      i = p;
    }
  }
  void down(std::size_t i) noexcept {
    for (;;) {
      std::size_t l = 2 * i + 1, m = i;
      if (l < v_.size() && Less{}(v_[l], v_[m])) m = l;
      if (l + 1 < v_.size() && Less{}(v_[l + 1], v_[m])) m = l + 1;
      if (m == i) return;
      std::swap(v_[i], v_[m]);
      i = m;
    }
  }

  std::vector<Task*> v_;
};

// Orders tasks by the `Key` member of their policy data `D` (in SchedInfo::data), ties by D::seq (the
// order they were queued in), so equal keys are served first-come first-served.
template <class D, auto Key>
struct ByKeyThenSeq {
  bool operator()(Task* a, Task* b) const noexcept {
    const D& x = sched_of(a).as<D>();
    const D& y = sched_of(b).as<D>();
    if (x.*Key != y.*Key) return x.*Key < y.*Key;
    return x.seq < y.seq;
  }
};

}  // namespace skyloft
