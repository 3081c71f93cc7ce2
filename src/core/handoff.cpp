// handoff.cpp - the blocked-thread hand-off: when a processor's kernel thread blocks in the kernel for
// longer than Config::handoff_us, a spare kernel thread takes the processor over and runs the other tasks
// (Go's entersyscall/retake). The task that blocked keeps its thread; when the call returns, it hands
// itself back to the scheduler and its thread becomes a spare.
//
// The protocol (own_word states in handoff.hpp; M1 = the blocked thread, T = its task, P = its processor):
//   H1. Marked blocking: BlockingSection CASes own_word kOwnRunning -> kOwnBlocking (M1's serial) and keeps
//       preemption disabled; leaving CASes it back. If that CAS fails, the monitor took P (H4). Leaving
//       reads neither its thread-locals nor P->kthread before that CAS (the monitor may be changing both).
//   H2. The monitor (sysmon.cpp) steals a marked P by CAS kOwnBlocking -> kOwnStealing once the section is
//       older than handoff_us and someone waits for P's core (queued tasks or a due timer).
//   H3. Unmarked blocking (a std::mutex whose holder waits in P's queue, a slow function-local static, a
//       plain read()): the monitor sees P make no progress while tasks wait, and reads M1's state from
//       /proc: sleeping, not inside the runtime (T->preempt_off == 0). It CASes kOwnRunning ->
//       kOwnStealing, points M1's thread-locals at M1's stand-in, then reads /proc again: if M1 is still
//       asleep in the very same system call (number, arguments, stack and instruction pointers) and P made
//       no progress, M1 has not returned to task code since the first read, so it never used P after the
//       redirect and the steal commits; otherwise the redirect is undone (kVerdictCancelled). Signals may
//       run the preemption handler on M1 meanwhile; it never redirects a restarted system call.
//       (Not under ThreadSanitizer, which cannot see the ordering the kernel provides here.)
//   H4. Committing a steal (the monitor, owning P): M1's thread-locals point at its stand-in (whose flag is
//       raised and whose current is T), the policy sees T block on P (block(T)), P->current is cleared,
//       verdict kVerdictStolen is published, and P goes to a spare thread, which attaches to it.
//   H5. M1 notices at its next runtime entry or preempt point (the stand-in's index is -1 and its flag is
//       up): reacquire_processor() waits for the verdict, and for kVerdictStolen makes T runnable again
//       (wakeup(T), as after a block) and switches T out to M1's loop context; T resumes wherever the policy
//       runs it, and M1 parks as a spare. T's on_cpu stays set until M1 has saved it (scheduler.cpp X1).
//   H6. Unpreemptible code (a task whose interrupts keep landing in libc or a library named in
//       no_preempt_libs while others wait for P): after several quick retries of one run failed, M1's own
//       preemption handler detaches M1 from P (escape_unpreemptible): it CASes kOwnRunning -> kOwnStealing,
//       takes a parked spare (never creates a thread: a handler may not), and commits as H4. M1 keeps T and
//       shares the core with the spare at the kernel's granularity until T reaches a safe point (the
//       monitor nudges detached threads) or enters the runtime; then H5. Safe in a handler because the
//       verdict "unsafe PC" implies T->preempt_off == 0: M1 holds no runtime lock and no owner-only state.
//       Not under a daemon: M1 would stay active on the core beside the spare (Single Binding Rule).
#include "core/handoff.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "core/fatal.hpp"
#include "core/kthread.hpp"
#include "core/policy_check.hpp"
#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "core/sysmon.hpp"
#include "skyloft/blocking.hpp"

namespace skyloft {

// ---- H1: the marked section ----

BlockingSection::BlockingSection() noexcept : task_(current_task()) {
  Task* t = static_cast<Task*>(task_);
  if (t == nullptr) return;
  RuntimeSection::enter(t);
  Processor* p = proc_in_section(t);
  KThread* kt = p->kthread.load(std::memory_order_relaxed);
  proc_ = p;
  kthread_ = kt;
  set_timer_slack(*kt, kPreciseTimerSlackNs);  // the call's own timeouts: a core wait may have loosened it
  p->blocking_since.store(now_ns(), std::memory_order_relaxed);
  const std::uint64_t running = own_word(kt->serial, kOwnRunning);
  std::uint64_t expected = running;
  // A failing CAS means the monitor is checking an unmarked steal (H3); it cannot commit while we run.
  while (!p->own_word.compare_exchange_weak(expected, own_word(kt->serial, kOwnBlocking),
                                            std::memory_order_acq_rel)) {
    expected = running;
    cpu_relax();
  }
  if (p->rt->sysmon) p->rt->sysmon->blocking_started(*p);
}

BlockingSection::~BlockingSection() {
  Task* t = static_cast<Task*>(task_);
  if (t == nullptr) return;
  // Not this_proc() nor p->kthread: a monitor that has just won the steal (H2) redirects our thread-locals
  // and clears p->kthread while we return from the call, so either may already, or not yet, have changed
  // (this_proc() read before the redirect, then P->kthread after the commit, gave a null KThread, a crash,
  // or once the spare attached, the spare's, whose verdict we then waited for forever: together about 1
  // run in 10 of tls_threads, whose threads block in read(), under a timer with the cores loaded). The CAS
  // below tells whether the steal happened.
  auto* p = static_cast<Processor*>(proc_);
  auto* kt = static_cast<KThread*>(kthread_);
  std::uint64_t expected = own_word(kt->serial, kOwnBlocking);
  if (!p->own_word.compare_exchange_strong(expected, own_word(kt->serial, kOwnRunning),
                                           std::memory_order_acq_rel)) {
    reacquire_processor(&kt->standin, t);  // H5: P went to a spare while we were blocked
  }
  RuntimeSection::leave(t);
}

// ---- H5: the blocked thread comes back ----

Processor* reacquire_processor(Processor* standin, Task* cur) noexcept {
  KThread* kt = standin->kthread.load(std::memory_order_relaxed);
  std::uint32_t verdict;
  while ((verdict = kt->standin_verdict.load(std::memory_order_acquire)) == kVerdictPending) cpu_relax();
  kt->standin_verdict.store(kVerdictPending, std::memory_order_relaxed);
  if (verdict == kVerdictCancelled) return this_proc();  // the monitor restored our thread-locals
  RuntimeCore* rt = standin->rt;
  cur->state.store(TaskState::runnable, std::memory_order_relaxed);
  policy_hand(cur);
  rt->policy->wakeup(cur, -1);  // blocked on P by the monitor (H4); now runnable anywhere
  cur->saved_errno = *standin->errno_slot;
  cur->saved_eh = *standin->eh_slot;
  standin->switch_prev = cur;
  standin->current = nullptr;
  sky_tl_current = nullptr;
  kt->detached.store(false, std::memory_order_release);
  void* transfer = switch_into(cur->ctx, kt->loop_ctx, standin, nullptr);
  finish_switch(transfer);
  return static_cast<Processor*>(transfer);
}

// ---- H4: committing a steal (the monitor owns P) ----

namespace {

// A parked spare thread, or nullptr.
KThread* take_spare(RuntimeCore& rt) noexcept {
  std::lock_guard<SpinLock> g(rt.spares_lock);
  KThread* spare = rt.spares;
  if (spare != nullptr) rt.spares = spare->next_spare;
  return spare;
}

// `spare`: the thread P goes to; nullptr: a parked spare, or a new thread if there is none.
void commit_steal(RuntimeCore& rt, Processor& p, KThread* m1, Task* t, KThread* spare = nullptr) noexcept {
  m1->standin.current = t;
  policy_not_held(t);
  p.policy->block(t, p.index);
  p.current = nullptr;
  p.pending_next = nullptr;
  p.kthread.store(nullptr, std::memory_order_relaxed);
  p.handoffs.add();
  m1->detached.store(true, std::memory_order_relaxed);
  m1->standin_verdict.store(kVerdictStolen, std::memory_order_release);
  // A spare takes P (one is kept ready; the monitor makes another if there is none).
  if (spare == nullptr) spare = take_spare(rt);
  if (spare == nullptr) {
    rt.new_kthread(&p);
    return;
  }
  spare->next_proc.store(&p, std::memory_order_release);
  spare->park.unpark();
}

void redirect_tls(KThread* m1, Processor* to) noexcept {
  *m1->tls_proc_slot.load(std::memory_order_relaxed) = to;
  *m1->tls_preempt_slot.load(std::memory_order_relaxed) = reinterpret_cast<std::uint32_t*>(to->preempt_word);
}

// What the kernel says about a thread: its state (stat) and the system call it is blocked in (syscall:
// "nr args... sp pc", or "running").
struct ThreadSample {
  char state = '?';
  char syscall[160] = {};
};

bool sample(const KThread* kt, ThreadSample& out) noexcept {
  char buf[512];
  ssize_t n = pread(kt->stat_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* paren = nullptr;  // the command name may contain spaces and parentheses: the last ')' ends it
  for (const char* c = buf; *c; ++c) {
    if (*c == ')') paren = c;
  }
  if (paren == nullptr || paren[1] != ' ') return false;
  out.state = paren[2];
  n = pread(kt->syscall_fd, out.syscall, sizeof out.syscall - 1, 0);
  if (n <= 0) return false;
  out.syscall[n] = '\0';
  return true;
}

bool asleep(const ThreadSample& s) noexcept { return s.state == 'S' || s.state == 'D'; }

// Two samples show the thread asleep in the very same system call (number, arguments, stack and
// instruction pointer), so it did not return to task code in between: it may have run the preemption
// handler, which does not redirect a restarted system call (signal.cpp) and touches only the flag.
bool same_blocked_call(const ThreadSample& a, const ThreadSample& b) noexcept {
  return asleep(a) && asleep(b) && a.syscall[0] >= '0' && a.syscall[0] <= '9' &&
         std::strcmp(a.syscall, b.syscall) == 0;
}

}  // namespace

bool kthread_on_cpu(const KThread* kt) noexcept {
  ThreadSample s;
  return sample(kt, s) && !asleep(s);
}

bool steal_marked(RuntimeCore& rt, Processor& p) noexcept {
  KThread* m1 = p.kthread.load(std::memory_order_acquire);
  if (m1 == nullptr) return false;
  std::uint64_t expected = own_word(m1->serial, kOwnBlocking);
  if (!p.own_word.compare_exchange_strong(expected, own_word(m1->serial, kOwnStealing), std::memory_order_acq_rel)) {
    return false;
  }
  // M1 is inside its section: leaving, it reads neither P nor its thread-locals before its CAS fails (H1).
  redirect_tls(m1, &m1->standin);
  commit_steal(rt, p, m1, p.current);
  return true;
}

namespace {
// H3: the task the monitor reads may exit and have its stack (which holds its record) unmapped by a joiner
// the moment M1 runs again, so its preemption count is read through the kernel, which fails rather than
// faults on an unmapped address. nullopt: unreadable (the steal is then not attempted; also where a seccomp
// profile forbids process_vm_readv: unmarked steals then never happen, marked ones still do).
std::optional<std::uint32_t> peek_preempt_off(const Task* t) noexcept {
  std::uint32_t v = 0;
  iovec local{&v, sizeof v};
  iovec remote{const_cast<std::atomic<std::uint32_t>*>(&t->preempt_off), sizeof v};
  if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof v)) return std::nullopt;
  return v;
}
}  // namespace

bool steal_unmarked(RuntimeCore& rt, Processor& p) noexcept {
#if SKY_TSAN
  (void)rt;
  (void)p;
  return false;
#else
  KThread* m1 = p.kthread.load(std::memory_order_acquire);
  if (m1 == nullptr || m1->stat_fd < 0 || m1->syscall_fd < 0) return false;
  ThreadSample first, second;
  if (!sample(m1, first) || !asleep(first)) return false;
  const std::uint64_t progress = p.tasks_run.get() + p.switches.get();
  const std::uint64_t running = own_word(m1->serial, kOwnRunning);
  std::uint64_t expected = running;
  if (!p.own_word.compare_exchange_strong(expected, own_word(m1->serial, kOwnStealing), std::memory_order_acq_rel)) {
    return false;
  }
  Task* t = __atomic_load_n(&p.current, __ATOMIC_RELAXED);
  bool ok = t != nullptr && peek_preempt_off(t) == 0u;
  if (ok) {
    redirect_tls(m1, &m1->standin);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    ok = sample(m1, second) && same_blocked_call(first, second) && peek_preempt_off(t) == 0u &&
         __atomic_load_n(&p.current, __ATOMIC_RELAXED) == t &&
         p.tasks_run.get() + p.switches.get() == progress;
    if (!ok) {
      redirect_tls(m1, &p);
      m1->standin_verdict.store(kVerdictCancelled, std::memory_order_release);  // if M1 saw the stand-in
    }
  }
  if (!ok) {
    p.own_word.store(running, std::memory_order_release);
    return false;
  }
  commit_steal(rt, p, m1, t);
  return true;
#endif
}

// ---- H6: a thread's handler detaches it from P ----

bool escape_unpreemptible(Processor& p, Task* t) noexcept {
#if SKY_TSAN
  (void)p;
  (void)t;
  return false;  // handlers run late there and see a copy of the context (signal.cpp)
#else
  RuntimeCore& rt = *p.rt;
  KThread* m1 = p.kthread.load(std::memory_order_relaxed);  // this thread
  if (m1 == nullptr || t->preempt_off.load(std::memory_order_relaxed) != 0) return false;
  // Under a daemon the escaped thread would stay active on the core beside the spare: two workers of
  // one core, which the Single Binding Rule forbids. The task then waits for its quick retries.
  if (shared_core(&p) != nullptr) return false;
  const std::uint64_t running = own_word(m1->serial, kOwnRunning);
  std::uint64_t expected = running;
  // Fails while the monitor examines an unmarked steal of P (H3); the next interrupt tries again.
  if (!p.own_word.compare_exchange_strong(expected, own_word(m1->serial, kOwnStealing), std::memory_order_acq_rel)) {
    return false;
  }
  KThread* spare = take_spare(rt);
  if (spare == nullptr) {
    p.own_word.store(running, std::memory_order_release);
    return false;
  }
  redirect_tls(m1, &m1->standin);
  p.escapes.add();
  commit_steal(rt, p, m1, t, spare);
  return true;
#endif
}

// ---- spares ----

void kthread_opened(KThread* kt) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(kt->tid));
  kt->stat_fd = open(path, O_RDONLY | O_CLOEXEC);
  std::snprintf(path, sizeof path, "/proc/self/task/%d/syscall", static_cast<int>(kt->tid));
  kt->syscall_fd = open(path, O_RDONLY | O_CLOEXEC);
}

void kthread_closed(KThread* kt) noexcept {
  if (kt->stat_fd >= 0) close(kt->stat_fd);
  if (kt->syscall_fd >= 0) close(kt->syscall_fd);
  kt->stat_fd = kt->syscall_fd = -1;
}

namespace {
struct SpareIdle : ParkAtOnce {
  explicit SpareIdle(KThread* k) : kt(k) {}
  KThread* kt;
  Processor* got = nullptr;
  bool find() { return (got = kt->next_proc.exchange(nullptr, std::memory_order_acq_rel)) != nullptr; }
  bool stop() const { return kt->rt->stopping.load(std::memory_order_acquire); }
};
}  // namespace

Processor* wait_as_spare(KThread* kt) noexcept {
  RuntimeCore& rt = *kt->rt;
  set_this_proc(nullptr);
  detail::reset_preempt_word();
  {
    std::lock_guard<SpinLock> g(rt.spares_lock);
    kt->next_spare = rt.spares;
    rt.spares = kt;
  }
  SpareIdle idle{kt};
  if (spin_then_park(kt->park, idle)) return idle.got;
  return nullptr;
}

}  // namespace skyloft
