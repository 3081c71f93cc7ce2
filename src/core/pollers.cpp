// pollers.cpp - registering and running the polling thread's pollers (pollers.hpp, rules PL1-PL3).
#include "core/pollers.hpp"

#include "skyloft/spinlock.hpp"

namespace skyloft {

int PollerSet::add(PollFn fn, void* arg) noexcept {
  while (claiming_.exchange(true, std::memory_order_acquire)) cpu_relax();
  int id = -1;
  for (int i = 0; i < kMaxPollers; ++i) {
    Slot& s = slots_[i];
    if (s.fn.load(std::memory_order_relaxed) != nullptr) continue;
    s.arg = arg;
    s.fn.store(fn, std::memory_order_seq_cst);  // PL1: published last
    count_.fetch_add(1, std::memory_order_seq_cst);
    id = i;
    break;
  }
  claiming_.store(false, std::memory_order_release);
  if (id >= 0 && wake_ != nullptr) wake_->unpark();  // PL3: it may have parked with nothing to poll
  return id;
}

void PollerSet::remove(int id) noexcept {
  if (id < 0 || id >= kMaxPollers) return;
  Slot& s = slots_[id];
  if (s.fn.exchange(nullptr, std::memory_order_seq_cst) == nullptr) return;  // not registered
  count_.fetch_sub(1, std::memory_order_seq_cst);
  // PL2: a run() that set in_run_ before our store may still call the old fn; one that sets it after
  // will load nullptr.
  while (in_run_.load(std::memory_order_seq_cst)) cpu_relax();
}

void PollerSet::run_slow(std::uint64_t now) noexcept {
  in_run_.store(true, std::memory_order_seq_cst);
  for (Slot& s : slots_) {
    if (PollFn fn = s.fn.load(std::memory_order_seq_cst)) fn(s.arg, now);
  }
  in_run_.store(false, std::memory_order_release);
}

}  // namespace skyloft
