// task_tls.cpp - per-task TLS blocks made and torn down with glibc's own entry points (rules in
// task_tls.hpp).
//
// The entry points are glibc's private ones (the ones its pthread_create uses), found with dlsym:
// _dl_get_tls_static_info, _dl_allocate_tls and _dl_deallocate_tls in the dynamic loader, __call_tls_dtors
// in libc. The one offset inside glibc's struct pthread that is not exported (the thread id) is measured
// on the thread that prepares the layout, which glibc made (the main thread too), never assumed; if it
// cannot be found, per-task TLS is refused with the reason rather than run half-configured. A task's
// resolver state is a thread-local of ours (tl_task_res), so the layout needs no second thread: a probe
// thread to find glibc's own per-thread resolver state cost a thread creation and a wake-up at every start.
#include "core/task_tls.hpp"

#include <dlfcn.h>
#include <resolv.h>
#include <signal.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <new>


#include "core/kthread.hpp"
#include "core/processor.hpp"
#include "core/scheduler.hpp"
#include "skyloft/preempt.hpp"

namespace skyloft {

TaskTlsLayout g_task_tls;

namespace {

using AllocateFn = void* (*)(void*);
using DeallocateFn = void (*)(void*, bool);
using DtorsFn = void (*)();

// glibc's x86-64 tcbhead_t: tcb at 0x00, dtv at 0x08, self at 0x10; the words from 0x18 to 0x50
// (multiple_threads, gscope_flag, sysinfo, stack_guard, pointer_guard, the unused vgetcpu cache, feature_1)
// are the same for every thread of a process and are copied (T2).
constexpr std::size_t kTcbSelf = 0x10;
constexpr std::size_t kSharedBegin = 0x18;
constexpr std::size_t kSharedEnd = 0x50;
constexpr std::size_t kGscopeFlag = 0x1c;  // inside the copied range, but per thread: starts "unused" (0)
// multiple_threads: 0 lets malloc and the stdio locks skip their locking (SINGLE_THREAD_P reads it), so a
// task's block must say 1 even when the template thread was still alone when it was copied.
constexpr std::size_t kMultipleThreads = 0x18;
// The thread id lives in struct pthread after the header (0x2d0 on glibc 2.36); searched in this window.
constexpr std::size_t kTidSearchBegin = 0x2c0;
constexpr std::size_t kTidSearchEnd = 0x400;
// T2: task ids start above every real tid (pid_max is at most 2^22) and below the futex owner-died bit.
constexpr std::uint32_t kTaskTidBase = 0x20000000;
constexpr std::uint32_t kTaskTidMask = 0x1fffffff;
constexpr int kRseqNotRegistered = -2;  // glibc's RSEQ_CPU_ID_REGISTRATION_FAILED

struct Glibc {
  std::string error;
  AllocateFn allocate = nullptr;
  DeallocateFn deallocate = nullptr;
  DtorsFn call_tls_dtors = nullptr;
  DtorsFn ctype_init = nullptr;      // __ctype_init: points the thread's ctype table pointers at the locale
  std::ptrdiff_t tid = -1;           // struct pthread::tid, from the thread pointer
  std::ptrdiff_t resp = 0;           // libc's __resp thread-local, from the thread pointer
  std::ptrdiff_t res_state = 0;      // tl_task_res, where a task's __resp points
  std::ptrdiff_t rseq_cpu = -1;      // struct rseq::cpu_id in the rseq area, or -1 without rseq
  unsigned char shared[kSharedEnd - kSharedBegin] = {};
};
Glibc g_glibc;

unsigned char* at(void* tp, std::ptrdiff_t off) { return static_cast<unsigned char*>(tp) + off; }

// ---- setuid and friends (T5) ----
// glibc makes a credential change process-wide by signalling every thread in its list (SIGSETXID, the
// second real-time signal) and waiting until each handler cleared a bit in THAT thread's struct pthread,
// which the handler finds as THREAD_SELF. A kernel thread running a task has the task's block as
// THREAD_SELF, so the bit would never clear and setuid() would spin forever. The wrapper below runs glibc's
// handler on the thread's own block, then returns to the task's.
constexpr int kSigSetxid = 33;  // glibc's SIGSETXID (__SIGRTMIN + 1)
struct KernelSigaction {        // the rt_sigaction system call's layout on x86-64
  void (*handler)(int, siginfo_t*, void*);
  unsigned long flags;
  void (*restorer)();
  std::uint64_t mask;
};
void (*g_glibc_setxid)(int, siginfo_t*, void*) = nullptr;  // written once before any task exists

// The thread that gave its block to main's task (task_tls_move_thread) and runs on a fresh one: glibc's
// list still names the original block with this thread's id, so that is the block its handler must mark.
// Written by that thread before main's task exists and after it ended; read by the handler on any thread.
std::atomic<void*> g_moved_fresh{nullptr};
std::atomic<void*> g_moved_own{nullptr};

constexpr int kMaxRedirectLooks = 100'000;  // listed_block's wait for a hand-off's redirect (each a yield)

// gettid as a bare system call: in a handler on a task, never the preload library's syscall() wrapper.
pid_t kernel_gettid() noexcept {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(long{SYS_gettid}) : "rcx", "r11", "memory");
  return static_cast<pid_t>(ret);
}

// The block glibc's list holds for the calling thread: a worker's own, the moved thread's original, or
// (a thread the runtime never re-pointed) the one it runs on.
// Only a processor (or stand-in) whose kernel thread is this one names that block: while the monitor takes
// the processor P of a thread blocked in the kernel (handoff.cpp H2-H4), sky_tl_proc may still name P when
// P->kthread is already null or the spare that took P, and the redirect to our stand-in comes right after
// the monitor's CAS, so the handler waits for it (marking the spare's block would leave setuid waiting
// for ours forever).
void* listed_block(void* running) {
  if (running == g_moved_fresh.load(std::memory_order_relaxed)) return g_moved_own.load(std::memory_order_relaxed);
  const pid_t self = kernel_gettid();
  for (int look = 0; look < kMaxRedirectLooks; ++look) {
    Processor* p = this_proc();
    KThread* kt = p != nullptr ? p->kthread.load(std::memory_order_acquire) : nullptr;
    if (p == nullptr || (kt != nullptr && kt->tid == self)) {
      return kt != nullptr && kt->loop_ctx.tls_tp != nullptr ? kt->loop_ctx.tls_tp : running;
    }
    os_yield();  // the monitor may need this very core to finish the redirect
  }
  return running;  // not reached in practice: a monitor stopped between its CAS and the redirect
}

void setxid_on_own_block(int sig, siginfo_t* info, void* ctx) {
  void* running = arch::thread_pointer();
  void* listed = listed_block(running);
  // The handler writes only the block's cancelhandling (an atomic update) and setxid_futex, so running it
  // on main's block while main's task runs elsewhere is sound.
  if (listed != running) arch::set_thread_pointer(listed);
  g_glibc_setxid(sig, info, ctx);
  if (listed != running) arch::set_thread_pointer(running);
}

// glibc installs its handler in the process's first pthread_create, so this runs once a runtime thread
// exists (task_tls_threads_started), not in prepare(): before it there is nothing to wrap, and the handler
// installed later would run unwrapped (memcached -u spun forever in setgroups).
void wrap_setxid_handler() {
  KernelSigaction act{};
  if (syscall(SYS_rt_sigaction, kSigSetxid, nullptr, &act, sizeof act.mask) != 0) return;
  if (act.handler == nullptr || reinterpret_cast<void*>(act.handler) == SIG_DFL ||
      reinterpret_cast<void*>(act.handler) == SIG_IGN || act.handler == &setxid_on_own_block) {
    return;  // not installed (no thread was ever created), or wrapped by an earlier runtime of the process
  }
  g_glibc_setxid = act.handler;
  act.handler = &setxid_on_own_block;
  // Every asynchronous signal waits until the wrapper returns (the kernel applies the mask at entry): a
  // handler nested while the thread pointer names the thread's own block would find another task's runtime
  // state there (a preemption signal read a stale sky_tl_current and crashed in the safe-point test).
  constexpr auto bit = [](int sig) { return std::uint64_t{1} << (sig - 1); };
  act.mask = ~(bit(SIGSEGV) | bit(SIGBUS) | bit(SIGILL) | bit(SIGFPE) | bit(SIGTRAP));
  syscall(SYS_rt_sigaction, kSigSetxid, &act, nullptr, sizeof act.mask);
}

// A task's resolver state (what glibc's __resp points at; a glibc thread's is in its struct pthread). Being
// static TLS, every block has its own, zeroed as a new thread's is; the kernel threads' copies go unused.
thread_local struct __res_state tl_task_res;

// The offset of this thread's id in its struct pthread: the first word of the search window that holds it.
std::ptrdiff_t find_tid(void* tp) {
  const auto tid = static_cast<std::int32_t>(syscall(SYS_gettid));
  for (std::size_t off = kTidSearchBegin; off + 4 <= kTidSearchEnd; off += 4) {
    std::int32_t v;
    std::memcpy(&v, at(tp, static_cast<std::ptrdiff_t>(off)), sizeof v);
    if (v == tid) return static_cast<std::ptrdiff_t>(off);
  }
  return -1;
}

void prepare(Glibc& g) {
  g.allocate = reinterpret_cast<AllocateFn>(dlsym(RTLD_DEFAULT, "_dl_allocate_tls"));
  g.deallocate = reinterpret_cast<DeallocateFn>(dlsym(RTLD_DEFAULT, "_dl_deallocate_tls"));
  g.call_tls_dtors = reinterpret_cast<DtorsFn>(dlsym(RTLD_DEFAULT, "__call_tls_dtors"));
  g.ctype_init = reinterpret_cast<DtorsFn>(dlsym(RTLD_DEFAULT, "__ctype_init"));
  auto* resp = static_cast<unsigned char*>(dlsym(RTLD_DEFAULT, "__resp"));  // this thread's instance
  if (g.allocate == nullptr || g.deallocate == nullptr || g.call_tls_dtors == nullptr || g.ctype_init == nullptr ||
      resp == nullptr) {
    g.error = "this C library does not export glibc's TLS entry points (_dl_allocate_tls, _dl_deallocate_tls, "
              "__call_tls_dtors, __ctype_init, __resp)";
    return;
  }
  void* tp = arch::thread_pointer();
  g.resp = resp - static_cast<unsigned char*>(tp);
  if (__rseq_size > 0) g.rseq_cpu = __rseq_offset + static_cast<std::ptrdiff_t>(offsetof(struct rseq, cpu_id));

  std::memcpy(g.shared, at(tp, kSharedBegin), sizeof g.shared);  // multiple_threads is overridden (see above)
  g.tid = find_tid(tp);
  if (g.tid < 0) {
    g.error = "cannot find the thread id in glibc's thread control block";
    return;
  }
  g.res_state = reinterpret_cast<unsigned char*>(&tl_task_res) - static_cast<unsigned char*>(tp);
  g_task_tls.current = reinterpret_cast<unsigned char*>(&sky_tl_current) - static_cast<unsigned char*>(tp);
  g_task_tls.proc = reinterpret_cast<unsigned char*>(&sky_tl_proc) - static_cast<unsigned char*>(tp);
  g_task_tls.preempt =
      reinterpret_cast<unsigned char*>(&detail::skyloft_preempt_word) - static_cast<unsigned char*>(tp);
  arch::detect_wrfsbase();
}

}  // namespace

std::string task_tls_prepare() {
  static std::once_flag once;
  std::call_once(once, [] { prepare(g_glibc); });
  return g_glibc.error;
}

// One runtime starts at a time (Runtime's constructor claims g_runtime first), so the check-then-install
// in wrap_setxid_handler needs no lock.
void task_tls_threads_started() { wrap_setxid_handler(); }

void* task_tls_create(std::uint64_t id) {
  const Glibc& g = g_glibc;
  void* tp = g.allocate(nullptr);  // T1: static TLS from the init images, a zeroed TCB, a fresh dtv
  if (tp == nullptr) throw std::bad_alloc();
  std::memcpy(at(tp, 0), &tp, sizeof tp);         // tcb: the thread pointer's own address (%fs:0)
  std::memcpy(at(tp, kTcbSelf), &tp, sizeof tp);  // self: what THREAD_SELF reads
  std::memcpy(at(tp, kSharedBegin), g.shared, sizeof g.shared);
  const std::int32_t zero = 0, one = 1;
  std::memcpy(at(tp, kGscopeFlag), &zero, sizeof zero);
  std::memcpy(at(tp, kMultipleThreads), &one, sizeof one);
  const auto tid = static_cast<std::int32_t>(kTaskTidBase | (id & kTaskTidMask));
  std::memcpy(at(tp, g.tid), &tid, sizeof tid);
  void* res = at(tp, g.res_state);
  std::memcpy(at(tp, g.resp), &res, sizeof res);
  if (g.rseq_cpu >= 0) {
    const std::int32_t none = kRseqNotRegistered;
    std::memcpy(at(tp, g.rseq_cpu), &none, sizeof none);
  }
  return tp;
}

void task_tls_destroy(void* tp) noexcept { g_glibc.deallocate(tp, /*dealloc_tcb=*/true); }

void task_tls_run_destructors() noexcept { g_glibc.call_tls_dtors(); }

void task_tls_started() noexcept { g_glibc.ctype_init(); }

bool task_tls_on() noexcept {
  RuntimeCore* rt = current_runtime();
  return rt != nullptr && rt->config.task_tls;
}

void* task_tls_move_thread() {
  void* own = arch::thread_pointer();
  void* fresh = task_tls_create(0);
  if (__rseq_size > 0) {
    constexpr std::uint32_t kRseqSignature = 0x53053053;  // glibc's RSEQ_SIG on x86
    auto* area = reinterpret_cast<struct rseq*>(at(own, __rseq_offset));
    if (syscall(SYS_rseq, area, static_cast<std::uint32_t>(__rseq_size), RSEQ_FLAG_UNREGISTER, kRseqSignature) == 0 ||
        syscall(SYS_rseq, area, std::uint32_t{32}, RSEQ_FLAG_UNREGISTER, kRseqSignature) == 0) {
      area->cpu_id = static_cast<std::uint32_t>(kRseqNotRegistered);
    }
  }
  g_moved_own.store(own, std::memory_order_relaxed);
  g_moved_fresh.store(fresh, std::memory_order_relaxed);
  arch::set_thread_pointer(fresh);
  return own;
}

void task_tls_return_thread(void* own) noexcept {
  void* fresh = arch::thread_pointer();
  // Main's task left its runtime thread-locals in `own`; a plain thread's are the fresh block's.
  const TaskTlsLayout& l = g_task_tls;
  for (std::ptrdiff_t off : {l.current, l.proc, l.preempt}) std::memcpy(at(own, off), at(fresh, off), sizeof(void*));
  arch::set_thread_pointer(own);
  g_moved_fresh.store(nullptr, std::memory_order_relaxed);
  task_tls_destroy(fresh);
}

void task_tls_adopt(void* tp) noexcept {
  RuntimeSection section;  // not preempted or moved while the FS base changes under it
  Task* t = current_task();
  void* old = t->ctx.tls_tp;
  t->ctx.tls_tp = tp;
  t->tls_borrowed = true;
  task_tls_enter(tp, t, this_proc()->kthread.load(std::memory_order_relaxed));
  // The section's count is in the task record, not in TLS, so leaving it on the new block is sound.
  if (old != nullptr) task_tls_destroy(old);
}

void task_tls_enter(void* tp, Task* incoming, KThread* kt) noexcept {
  const TaskTlsLayout& l = g_task_tls;
  Processor* proc = this_proc();  // the thread's, in the block being left
  std::uint32_t* word = detail::skyloft_preempt_word;
  std::memcpy(at(tp, l.current), &incoming, sizeof incoming);
  std::memcpy(at(tp, l.proc), &proc, sizeof proc);
  std::memcpy(at(tp, l.preempt), &word, sizeof word);
  kt->tls_proc_slot.store(reinterpret_cast<Processor**>(at(tp, l.proc)), std::memory_order_relaxed);
  kt->tls_preempt_slot.store(reinterpret_cast<std::uint32_t**>(at(tp, l.preempt)), std::memory_order_relaxed);
  arch::set_thread_pointer(tp);
}

}  // namespace skyloft
