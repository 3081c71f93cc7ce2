// condvar.cpp - CondVar: a sequence word that notify bumps; waiters sleep on the value they saw while
// holding the mutex, so a notify between their unlock and their sleep changes the word and is not lost.
#include "skyloft/sync.hpp"

namespace skyloft {

void CondVar::wait(std::unique_lock<Mutex>& lock) { wait_until(lock, kNoDeadline); }

std::cv_status CondVar::wait_until(std::unique_lock<Mutex>& lock, Deadline deadline) {
  return wait_until(lock, deadline, WaitReason::condvar);
}

std::cv_status CondVar::wait_until(std::unique_lock<Mutex>& lock, Deadline deadline, WaitReason reason) {
  std::uint32_t seq = seq_.load(std::memory_order_relaxed);
  lock.unlock();
  WaitResult r = wait_address(seq_, seq, deadline, reason);
  lock.lock();
  return r == WaitResult::timed_out ? std::cv_status::timeout : std::cv_status::no_timeout;
}

void CondVar::notify_one() noexcept {
  seq_.fetch_add(1, std::memory_order_seq_cst);
  wake_address(seq_, 1);  // one load when nobody waits in the bucket
}

void CondVar::notify_all() noexcept {
  seq_.fetch_add(1, std::memory_order_seq_cst);
  wake_address_all(seq_);
}

}  // namespace skyloft
