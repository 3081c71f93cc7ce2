// worker.cpp - the worker loop: pick -> run -> when idle: timers, balance (steal), spin, park.
//
// Idle protocol, as numbered steps (the names are used in comments elsewhere):
//   I1. pick_next (fires due timers first). Found: run it.
//   I2. Mark idle, count as spinning (notify_work_available skips waking others while someone spins).
//   I3. Loop for spin_us: timers, pick_next, balance. Found: run it.
//   I4. Park (see park.hpp): prepare, re-check pick_next/balance, sleep until a kick or the earliest timer.
//       A worker parked with no timer armed sets parked_forever, which shutdown uses to detect quiescence.
//   I5. On wake, go back to I3.
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "core/fatal.hpp"
#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "skyloft/preempt.hpp"
#include "skyloft/time.hpp"

namespace skyloft {

void task_entry(void* arg, void* transfer);

namespace arch {
void init_thread_context(ExecContext& ctx) {
  pthread_attr_t attr;
  void* lo = nullptr;
  std::size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &lo, &size);
    pthread_attr_destroy(&attr);
  }
  ctx.stack_lo = lo;
  ctx.stack_size = size;
#if SKY_TSAN
  ctx.tsan_fiber = __tsan_get_current_fiber();
  ctx.tsan_owned = false;
#endif
}
}  // namespace arch

namespace {

Task* try_find(Worker* w) {
  if (Task* t = worker_pick(w)) return t;
  if (Task* t = w->policy->balance(w->index)) {
    w->steals.add();
    return t;
  }
  return nullptr;
}

// I4: returns a task found while parking, or nullptr after a wake-up or timeout.
Task* park_worker(Worker* w) {
  RuntimeCore& rt = w->rt;
  rt.nr_parked.fetch_add(1, std::memory_order_seq_cst);
  w->park.prepare();
  Task* t = try_find(w);
  if (t != nullptr || rt.stopping.load(std::memory_order_acquire)) {
    w->park.cancel();
    rt.nr_parked.fetch_sub(1, std::memory_order_relaxed);
    return t;
  }
  std::uint64_t deadline = w->timers.earliest();
  w->parked_forever.store(deadline == UINT64_MAX, std::memory_order_release);
  w->parks.add();
  w->park.wait(deadline);
  w->parked_forever.store(false, std::memory_order_relaxed);
  rt.nr_parked.fetch_sub(1, std::memory_order_relaxed);
  return nullptr;
}

// I1-I5; returns nullptr only when the runtime stops.
Task* find_work(Worker* w) {
  if (Task* t = worker_pick(w)) {
    w->idle.store(false, std::memory_order_relaxed);
    return t;
  }
  RuntimeCore& rt = w->rt;
  const std::uint64_t spin_ns = std::uint64_t{rt.config.spin_us} * 1000;
  const std::uint64_t start = now_ns();
  w->idle.store(true, std::memory_order_relaxed);
  rt.nr_spinning.fetch_add(1, std::memory_order_seq_cst);
  Task* found = nullptr;
  std::uint64_t spin_end = start + spin_ns;
  for (;;) {
    if ((found = try_find(w)) != nullptr) break;
    if (rt.stopping.load(std::memory_order_acquire)) break;
    std::uint64_t now = now_ns();
    if (now < spin_end) {
      for (int i = 0; i < 16; ++i) cpu_relax();
      continue;
    }
    rt.nr_spinning.fetch_sub(1, std::memory_order_seq_cst);
    w->idle.store(false, std::memory_order_relaxed);  // parked: handing it work needs a wake-up syscall
    found = park_worker(w);
    w->idle.store(true, std::memory_order_relaxed);
    rt.nr_spinning.fetch_add(1, std::memory_order_seq_cst);
    if (found != nullptr) break;
    spin_end = now_ns() + spin_ns;
  }
  rt.nr_spinning.fetch_sub(1, std::memory_order_seq_cst);
  w->idle.store(false, std::memory_order_relaxed);
  w->idle_ns.add(now_ns() - start);
  return found;
}

}  // namespace

void worker_main(Worker* w) {
  RuntimeCore& rt = w->rt;
  w->tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (rt.config.pin_workers) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->core, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      sky_fatal("cannot pin worker %d to core %d: %s", w->index, w->core, std::strerror(errno));
    }
  }
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // 50 us default slack would delay timed parks
  char name[16];
  std::snprintf(name, sizeof name, "skyloft-w%d", w->index);
  pthread_setname_np(pthread_self(), name);
  install_fault_stack();
  set_this_worker(w);
  detail::skyloft_preempt_word = reinterpret_cast<std::uint32_t*>(&w->preempt_flag);
  w->errno_slot = &errno;
  if (w->preempt_hooks) rt.preempt->worker_started(*w);
  arch::init_thread_context(w->loop_ctx);
  rt.policy->init_worker(w->index);

  while (Task* t = find_work(w)) {
    worker_dispatch(w, t);
    void* transfer = arch::switch_context(w->loop_ctx, t->ctx, w);
    finish_switch(transfer);
  }

  if (w->preempt_hooks) rt.preempt->worker_stopping(*w);
  set_this_worker(nullptr);
  remove_fault_stack();
}

}  // namespace skyloft
