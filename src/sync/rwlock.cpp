// rwlock.cpp - writer-preferring reader-writer lock built from Mutex and two CondVars.
#include "skyloft/sync.hpp"

namespace skyloft {

void RWLock::lock() { try_lock_until(kNoDeadline); }

bool RWLock::try_lock_until(Deadline deadline) {
  std::unique_lock<Mutex> guard(mutex_);
  ++writers_waiting_;
  while (writer_ || readers_ != 0) {
    if (writers_cv_.wait_until(guard, deadline, WaitReason::rwlock) == std::cv_status::timeout &&
        (writer_ || readers_ != 0)) {
      // Readers held back for this writer may go now if no other writer waits.
      if (--writers_waiting_ == 0 && !writer_) readers_cv_.notify_all();
      return false;
    }
  }
  --writers_waiting_;
  writer_ = true;
  return true;
}

bool RWLock::try_lock() {
  std::lock_guard<Mutex> guard(mutex_);
  if (writer_ || readers_ != 0) return false;
  writer_ = true;
  return true;
}

void RWLock::unlock() {
  std::lock_guard<Mutex> guard(mutex_);
  writer_ = false;
  if (writers_waiting_ != 0) {
    writers_cv_.notify_one();
  } else {
    readers_cv_.notify_all();
  }
}

void RWLock::lock_shared() { try_lock_shared_until(kNoDeadline); }

bool RWLock::try_lock_shared_until(Deadline deadline) {
  std::unique_lock<Mutex> guard(mutex_);
  while (writer_ || writers_waiting_ != 0) {
    if (readers_cv_.wait_until(guard, deadline, WaitReason::rwlock) == std::cv_status::timeout &&
        (writer_ || writers_waiting_ != 0)) {
      return false;
    }
  }
  ++readers_;
  return true;
}

bool RWLock::try_lock_shared() {
  std::lock_guard<Mutex> guard(mutex_);
  if (writer_ || writers_waiting_ != 0) return false;
  ++readers_;
  return true;
}

void RWLock::unlock_shared() {
  std::lock_guard<Mutex> guard(mutex_);
  if (--readers_ == 0 && writers_waiting_ != 0) writers_cv_.notify_one();
}

}  // namespace skyloft
