// condvar.cpp - CondVar: a sequence word that notify bumps; waiters sleep on the value they saw while
// holding the mutex, so a notify between their unlock and their sleep changes the word and is not lost.
#include "skyloft/sync.hpp"

namespace skyloft {

void CondVar::wait(std::unique_lock<Mutex>& lock) { wait_until(lock, kNoDeadline); }

std::cv_status CondVar::wait_until(std::unique_lock<Mutex>& lock, Deadline deadline) {
  std::uint32_t seq = seq_.load(std::memory_order_relaxed);
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  lock.unlock();
  WaitResult r = wait_address(seq_, seq, deadline, WaitReason::condvar);
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  lock.lock();
  return r == WaitResult::timed_out ? std::cv_status::timeout : std::cv_status::no_timeout;
}

void CondVar::notify_one() noexcept {
  seq_.fetch_add(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) != 0) wake_address(seq_, 1);
}

void CondVar::notify_all() noexcept {
  seq_.fetch_add(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) != 0) wake_address_all(seq_);
}

}  // namespace skyloft
