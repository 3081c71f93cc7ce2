// wait_table.cpp - the address-keyed wait queue (futex-like) that every skyloft primitive blocks on.
//
// A fixed table of buckets, each a spinlock and a FIFO list of waiters; a waiter is a stack object of the
// waiting task (or plain thread). The table is process-global and constant-initialised, so primitives work
// in plain threads with no runtime, and no static constructor runs.
//
// Rules that make waking safe:
//   R1. A waiter's status changes only under its bucket lock, by exactly one party: a waker (woken) or
//       the deadline (timed_out).
//   R2. That party unparks the waiter while still holding the bucket lock.
//   R3. The waiter, after each wake-up, reads its status under the bucket lock. So when it sees a final
//       status, the party that set it has finished touching the waiter and the task (R2), and the waiter
//       may return, exit, or free the object that held the word.
//   R4. The timer of a timed wait is cancelled before the waiter returns; TimerHeap::cancel waits for a
//       callback that is already running.
//   R5. wake_address skips the lock when the bucket has no waiters. The waiter increments the count
//       (seq_cst RMW) before reading the word (seq_cst); the waker changed the word with a seq_cst operation
//       before reading the count (seq_cst): in the single total order of seq_cst operations one of them
//       sees the other. (No fence is needed: every caller's change of the word is a seq_cst RMW.)
#include "core/wait_table.hpp"

#include <errno.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

#include "core/fatal.hpp"
#include "core/park.hpp"
#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "core/spinlock.hpp"
#include "core/timer_heap.hpp"
#include "skyloft/wait.hpp"

namespace skyloft {
namespace {

enum class WaitStatus : std::uint8_t { waiting, woken, timed_out };

// A plain kernel thread's parking word (one per thread).
struct ThreadParker {
  std::atomic<std::uint32_t> word{0};  // 1: unparked
  void park(std::uint64_t deadline) noexcept {
    while (word.load(std::memory_order_acquire) == 0) {
      if (deadline != UINT64_MAX && now_ns() >= deadline) return;
      futex_wait_word(word, 0, deadline);
    }
    word.store(0, std::memory_order_relaxed);
  }
  void unpark() noexcept {
    word.store(1, std::memory_order_release);
    futex_wake_word(word, 1);
  }
};
thread_local ThreadParker tl_parker;

struct Bucket;

struct Waiter {
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  const void* addr = nullptr;
  Task* task = nullptr;              // exactly one of task / thread is set
  ThreadParker* thread = nullptr;
  Bucket* bucket = nullptr;
  WaitStatus status = WaitStatus::waiting;  // protected by the bucket lock (R1)
  WaitReason reason = WaitReason::none;
  TimerEntry timer;                  // timed waits of tasks
};

struct alignas(64) Bucket {
  SpinLock lock;
  std::atomic<std::uint32_t> nwaiters{0};
  Waiter* head = nullptr;  // protected by lock
  Waiter* tail = nullptr;  // protected by lock

  void push(Waiter* w) noexcept {
    w->prev = tail;
    w->next = nullptr;
    (tail ? tail->next : head) = w;
    tail = w;
    nwaiters.fetch_add(1, std::memory_order_seq_cst);
  }
  void unlink(Waiter* w) noexcept {
    (w->prev ? w->prev->next : head) = w->next;
    (w->next ? w->next->prev : tail) = w->prev;
    w->next = w->prev = nullptr;
    // Only changed under the lock, so no RMW is needed to decrement.
    nwaiters.store(nwaiters.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
};

constexpr std::size_t kBuckets = 4096;
Bucket g_buckets[kBuckets];

Bucket& bucket_for(const void* addr) noexcept {
  auto key = reinterpret_cast<std::uintptr_t>(addr) >> 2;
  return g_buckets[(key * 0x9E3779B97F4A7C15ull) >> (64 - 12)];
}

// R2: called with the bucket lock held.
void wake_locked(Waiter* w, WaitStatus status) noexcept {
  w->bucket->unlink(w);
  w->status = status;
  if (w->task) {
    task_unpark(w->task);
  } else {
    w->thread->unpark();
  }
}

void on_deadline(TimerEntry* t) {
  Waiter* w = reinterpret_cast<Waiter*>(reinterpret_cast<char*>(t) - offsetof(Waiter, timer));
  std::lock_guard<SpinLock> guard(w->bucket->lock);
  if (w->status == WaitStatus::waiting) wake_locked(w, WaitStatus::timed_out);
}

std::uint64_t to_ns(Deadline d) noexcept {
  if (d == kNoDeadline) return UINT64_MAX;
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count();
  return ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
}

}  // namespace

const char* to_string(WaitReason r) noexcept {
  switch (r) {
    case WaitReason::none: return "nothing";
    case WaitReason::mutex: return "a mutex";
    case WaitReason::condvar: return "a condition variable";
    case WaitReason::rwlock: return "a rwlock";
    case WaitReason::semaphore: return "a semaphore";
    case WaitReason::barrier: return "a barrier";
    case WaitReason::waitgroup: return "a wait group";
    case WaitReason::join: return "a join";
    case WaitReason::sleep: return "a sleep";
    case WaitReason::address: return "an address";
    case WaitReason::io: return "I/O";
  }
  return "unknown";
}

WaitResult wait_address(const std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline,
                        WaitReason reason) {
  RuntimeSection section;  // bucket and timer spinlocks are held below; a task must not be preempted there
  const std::uint64_t deadline_ns = to_ns(deadline);
  if (deadline_ns != UINT64_MAX && now_ns() >= deadline_ns) {
    return word.load(std::memory_order_acquire) == expected ? WaitResult::timed_out : WaitResult::value_changed;
  }
  Task* task = current_task();
  Processor* proc = task ? proc_in_section(task) : nullptr;
  Bucket& b = bucket_for(&word);
  Waiter w;
  w.addr = &word;
  w.bucket = &b;
  w.reason = reason;
  if (task) {
    w.task = task;
  } else {
    w.thread = &tl_parker;
  }
  {
    std::lock_guard<SpinLock> guard(b.lock);
    b.push(&w);  // R5: count first, then read the word
    if (word.load(std::memory_order_seq_cst) != expected) {
      b.unlink(&w);
      return WaitResult::value_changed;
    }
    if (task && deadline_ns != UINT64_MAX) proc->timers.arm(&w.timer, deadline_ns, &on_deadline);
  }
  if (task && deadline_ns != UINT64_MAX) proc->rt->timer_armed(proc, deadline_ns);
  WaitStatus status;
  for (;;) {
    if (task) {
      task_park(reason);
    } else {
      tl_parker.park(deadline_ns);
    }
    std::lock_guard<SpinLock> guard(b.lock);  // R3
    if (w.status == WaitStatus::waiting && !task && deadline_ns != UINT64_MAX && now_ns() >= deadline_ns) {
      b.unlink(&w);
      w.status = WaitStatus::timed_out;
    }
    status = w.status;
    if (status != WaitStatus::waiting) break;
  }
  if (w.timer.heap != nullptr) w.timer.heap->cancel(&w.timer);  // R4
  if (!task) {
    // A wake-up that raced with our own timeout may have left the thread parker set; clear it so the next
    // wait does not return spuriously at once (harmless either way).
    tl_parker.word.store(0, std::memory_order_relaxed);
  }
  return status == WaitStatus::timed_out ? WaitResult::timed_out : WaitResult::woken;
}

std::size_t wake_address(const std::atomic<std::uint32_t>& word, std::size_t count) noexcept {
  Bucket& b = bucket_for(&word);
  if (b.nwaiters.load(std::memory_order_seq_cst) == 0) return 0;  // R5
  RuntimeSection section;
  std::size_t woken = 0;
  std::lock_guard<SpinLock> guard(b.lock);
  for (Waiter* w = b.head; w != nullptr && woken < count;) {
    Waiter* next = w->next;
    if (w->addr == &word) {
      wake_locked(w, WaitStatus::woken);
      ++woken;
    }
    w = next;
  }
  return woken;
}

void wait_table_drop_tasks(std::uint64_t epoch, std::vector<BlockedTaskInfo>& out, std::vector<Task*>& tasks) {
  for (Bucket& b : g_buckets) {
    std::lock_guard<SpinLock> guard(b.lock);
    for (Waiter* w = b.head; w != nullptr;) {
      Waiter* next = w->next;
      if (w->task && w->task->runtime_epoch == epoch) {
        out.push_back(BlockedTaskInfo{w->task->sched.id, w->reason, w->addr});
        tasks.push_back(w->task);
        b.unlink(w);
      }
      w = next;
    }
  }
}

void this_task::sleep_until(Deadline deadline) {
  std::atomic<std::uint32_t> never_changes{0};
  while (to_ns(deadline) > now_ns()) {
    if (!this_task::in_task()) {
      std::this_thread::sleep_until(deadline);
      return;
    }
    wait_address(never_changes, 0, deadline, WaitReason::sleep);
  }
}

}  // namespace skyloft
