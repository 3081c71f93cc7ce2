// signal.cpp - the preemption signal handler: the handler decides, safe points act (Go, Caladan).
//
// When the preemption signal arrives on a runtime thread:
//   0. A nudge (nudge_thread's own token) returns at once: entering the kernel was its whole purpose.
//   1. A signal the runtime did not send (another process, the program's own kill/raise/pthread_kill/
//      sigqueue, a POSIX timer of the program) goes to the program's handler: the one installed before the
//      runtime's, or one the program installed later (sigaction.cpp records it instead of replacing ours).
//      The runtime's own signals carry a per-process token in si_value (rt_tgsigqueueinfo, SIGEV_THREAD_ID
//      timers); the monitor's plain tgkill is recognised only on a thread that lost its processor.
//   2. It raises the processor's flag (so a deferred request is honoured at the next preempt point or
//      runtime exit) and returns at once unless the task is at an async safe point (safe_point.hpp).
//      Under ThreadSanitizer a handler runs late (at TSan's next synchronisation point) and receives a copy
//      of the interrupted context, so a redirect would be lost: there, every interrupt only raises the flag.
//   3. At a safe point it sets preempt_off (so nothing nests) and redirects the interrupted context to
//      sky_preempt_trampoline: the interrupted PC is pushed below the red zone. It never switches stacks.
//   4. The trampoline saves the registers and the full vector state and calls sky_preempt_entry()
//      (core/preemption.cpp), which runs on the task's stack with the signal mask restored.
// On a thread that lost its processor (hand-off), this_proc() is the thread's stand-in, whose flag is
// always raised: a redirect sends the task back through the scheduler (core/handoff.cpp).
//
// Deferral and quick retry. A task whose PC is in libc (snprintf, malloc) cannot be preempted there, and a
// task that calls libc in a loop is inside it most of the time: retried once a quantum (or with a backoff),
// nearly every interrupt would land in libc again and a pure-computation task on the same core would
// starve for seconds. So an unsafe-PC deferral asks for a quick retry, a fraction of a quantum later with
// jitter so that it does not phase-lock with the task's loop (note_unsafe_deferral; the ticker resends, the
// timer mechanism arms a one-shot). Each try lands outside libc with the probability of the task's time
// outside it, so a few dozen quick tries (a few quanta) find it. Not retried quickly: a PC on a system
// call instruction (the task is blocked in the kernel; the hand-off deals with that), preemption disabled
// (honoured at the region's end by the flag), a foreign stack or no stack room (not transient), and more
// than kMaxQuickRetries in one run (it then backs off as before). Rejected: redirecting the return address
// of the libc call (the frame chain through libc has no frame pointers, and a patched return address breaks
// C++ unwinding through that frame).
// Escape. Quick retries fail for a task that is inside libc nearly all the time (measured: ~37 interrupts
// per success for a snprintf/malloc loop, tens of milliseconds per turn of the task it delays). After
// kEscapeAfterRetries failed quick retries in one run, the handler detaches its thread from the processor
// (core/handoff.cpp H6): a spare thread runs the waiting tasks at once, while the task stuck in libc keeps
// its thread and shares the core with the spare at the kernel's granularity until it reaches a safe point.
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <x86intrin.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "arch/context.hpp"
#include "core/app_core.hpp"
#include "core/fatal.hpp"
#include "core/handoff.hpp"
#include "core/kthread.hpp"
#include "core/processor.hpp"
#include "core/scheduler.hpp"
#include "core/spinlock.hpp"
#include "preempt/mechanism.hpp"
#include "preempt/safe_point.hpp"
#include "skyloft/config.hpp"
#include "skyloft/time.hpp"

extern "C" void sky_preempt_trampoline();

// Size of the XSAVE area for the features enabled in XCR0 (CPUID leaf 0xD), read by the trampoline.
extern "C" {
__attribute__((visibility("hidden"))) std::uint64_t sky_xsave_size = 4096;
// 1 when the CPU has XSAVEC (CPUID.(EAX=0DH,ECX=1):EAX[1]); the trampoline then saves in compacted form.
__attribute__((visibility("hidden"))) std::uint8_t sky_xsave_compact = 0;
}

namespace skyloft {
namespace {

std::atomic<int> g_signo{0};
pid_t g_pid = 0;
uid_t g_uid = 0;
void* g_token = nullptr;  // si_value of the runtime's signals; written once at install, before any is sent
void* g_nudge_token = nullptr;  // si_value of nudge_thread's signals (g_token with its low bit flipped)

// The program's handler for the preemption signal (the forward target): two slots and an index, so a
// handler reads a complete one while sigaction() (sigaction.cpp) writes the other. Writers hold
// g_forward_lock; two writes within one handler's run could reuse its slot (a handler runs for microseconds).
struct sigaction g_forward[2];
std::atomic<int> g_forward_current{0};
SpinLock g_forward_lock;

// Quick retries of unsafe-PC deferrals, per processor (written by the handler on the processor's thread).
constexpr std::uint32_t kMaxQuickRetries = 256;
constexpr std::uint32_t kEscapeAfterRetries = 8;  // a few quanta of quick retries (see "Escape" above)
struct alignas(64) QuickRetry {
  std::atomic<std::uint32_t> seq{0};  // unsafe-PC deferrals that asked for a quick retry (mechanisms read)
  std::uint64_t run_seq = 0;          // the run `count` belongs to
  std::uint32_t count = 0;            // quick retries asked for in that run
};
QuickRetry g_quick[kMaxWorkers];
std::atomic<UnsafeDeferralHook> g_unsafe_hook{nullptr};
std::atomic<void*> g_unsafe_hook_arg{nullptr};

#if SKY_TSAN
constexpr bool kSignalsDeliveredLate = true;
#else
constexpr bool kSignalsDeliveredLate = false;
#endif

// Signals we send carry g_token (rt_tgsigqueueinfo: SI_QUEUE; our POSIX timers: SI_TIMER). The monitor
// nudges a thread that lost its processor with a plain tgkill (SI_TKILL from this process).
bool sent_by_runtime(const siginfo_t* info, const Processor* p) noexcept {
  if ((info->si_code == SI_QUEUE || info->si_code == SI_TIMER) && info->si_value.sival_ptr == g_token) return true;
  return p != nullptr && p->index < 0 && info->si_code == SI_TKILL && info->si_pid == g_pid;
}

void forward_to_program(int sig, siginfo_t* info, void* context) {
  const struct sigaction& fw = g_forward[g_forward_current.load(std::memory_order_acquire)];
  const int flags = fw.sa_flags;
  void (*handler)(int) = fw.sa_handler;
  void (*action)(int, siginfo_t*, void*) = fw.sa_sigaction;
  sigset_t mask = fw.sa_mask, old;
  if (flags & SA_SIGINFO) {
    if (action == nullptr) return;
  } else if (handler == SIG_DFL || handler == SIG_IGN) {
    // SIG_DFL of the preemption signals we allow (SIGURG, SIGUSR*, real-time) would terminate or ignore;
    // a signal nobody handled is dropped rather than killing the process the runtime runs in.
    return;
  }
  if (!(flags & SA_NODEFER)) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, &old);  // the program's sa_mask, as the kernel would have applied it
  if (flags & SA_SIGINFO) action(sig, info, context);
  else handler(sig);
  sigprocmask(SIG_SETMASK, &old, nullptr);
}

// An unsafe-PC deferral: worth a quick retry? Returns how many this run has asked for, this one included
// (0: no retry). See "Deferral and quick retry" above.
std::uint32_t want_quick_retry(Processor& p, std::uintptr_t pc) noexcept {
  std::uint16_t insn;
  std::memcpy(&insn, reinterpret_cast<const void*>(pc), sizeof insn);
  if (insn == 0x050f) return 0;  // `syscall`: blocked in (or restarting) a system call
  QuickRetry& q = g_quick[static_cast<std::size_t>(p.index)];
  const std::uint64_t run = p.run_seq.load(std::memory_order_relaxed);
  if (run != q.run_seq) {
    q.run_seq = run;
    q.count = 0;
  }
  if (q.count >= kMaxQuickRetries) return kMaxQuickRetries + 1;  // no more quick ones; the escape stays open
  ++q.count;
  q.seq.store(q.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  return q.count;
}

void on_preempt_signal(int sig, siginfo_t* info, void* context) {
  if ((info->si_code == SI_QUEUE) && info->si_value.sival_ptr == g_nudge_token) return;  // entering was the point
  int saved_errno = errno;
  Processor* p = this_proc();
  if (!sent_by_runtime(info, p)) {
    forward_to_program(sig, info, context);
    errno = saved_errno;
    return;
  }
  Task* t = p != nullptr ? sky_tl_current : nullptr;
  // Another application asking for the core (app_core.hpp O3d) is not a quantum's tick: never stale.
  const bool revocation = info->si_code == SI_QUEUE && info->si_pid != g_pid;
  if (t != nullptr && !revocation && p->track_run_start &&
      now_ns() - p->run_start_ns.load(std::memory_order_relaxed) < p->min_run_ns) {
    t = nullptr;  // a tick for the previous run, delivered after the switch: not this run's quantum
  }
  if (t != nullptr) {
    p->preempt_word->store(kPreemptNow, std::memory_order_relaxed);
    auto* uc = static_cast<ucontext_t*>(context);
    greg_t* regs = uc->uc_mcontext.gregs;
    auto pc = static_cast<std::uintptr_t>(regs[REG_RIP]);
    auto sp = static_cast<std::uintptr_t>(regs[REG_RSP]);
    // A blocking system call interrupted by this signal is restarted by re-executing its `syscall`
    // instruction (0f 05), to which the kernel rewound the PC: never redirect there (the hand-off relies
    // on a thread blocked in a call not running task code, core/handoff.cpp H3).
    std::uint16_t insn;
    std::memcpy(&insn, reinterpret_cast<const void*>(pc), sizeof insn);
    const SafePoint verdict = kSignalsDeliveredLate ? SafePoint::preempt_off
                              : insn == 0x050f      ? SafePoint::unsafe_pc
                                                    : classify_safe_point(*t, pc, sp);
    if (verdict == SafePoint::safe) {
      t->preempt_off.store(1, std::memory_order_relaxed);  // sky_preempt_entry clears it
      std::atomic_signal_fence(std::memory_order_seq_cst);
      sp -= 128 + sizeof(std::uintptr_t);  // skip the red zone, then "push" the interrupted PC
      *reinterpret_cast<std::uintptr_t*>(sp) = pc;
      regs[REG_RSP] = static_cast<greg_t>(sp);
      regs[REG_RIP] = reinterpret_cast<greg_t>(&sky_preempt_trampoline);
    } else if (p->index >= 0) {
      p->preempt_deferred.add();
      if (revocation && verdict == SafePoint::unsafe_pc) {
        if (AppCore* ac = shared_core(p)) ac->revocation_deferred();  // O3d: its wanters re-send
      }
      const std::uint32_t retries = verdict == SafePoint::unsafe_pc ? want_quick_retry(*p, pc) : 0;
      if (retries >= kEscapeAfterRetries && escape_unpreemptible(*p, t)) {
        // This thread drives its stand-in now; the spare runs the processor's other tasks.
      } else if (retries != 0 && retries <= kMaxQuickRetries) {
        if (UnsafeDeferralHook hook = g_unsafe_hook.load(std::memory_order_acquire)) {
          hook(*p, g_unsafe_hook_arg.load(std::memory_order_relaxed));
        }
      }
    }
  }
  errno = saved_errno;
}

std::uint64_t xsave_area_size() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_XSAVE) || !(ecx & bit_OSXSAVE)) {
    sky_fatal("preemption needs XSAVE (CPUID.1:ECX.XSAVE/OSXSAVE), which this CPU or OS does not enable");
  }
  __cpuid_count(0xd, 1, eax, ebx, ecx, edx);
  sky_xsave_compact = (eax >> 1) & 1;
  __cpuid_count(0xd, 0, eax, ebx, ecx, edx);
  return ebx;  // bytes needed for the features currently enabled in XCR0 (enough for XSAVEC too)
}

bool allowed_signal(int sig) noexcept {
  return sig == SIGURG || sig == SIGUSR1 || sig == SIGUSR2 || (sig >= SIGRTMIN && sig <= SIGRTMAX);
}

}  // namespace

int preempt_signal() noexcept { return g_signo.load(std::memory_order_relaxed); }
void* preempt_signal_token() noexcept { return g_token; }

void validate_preempt_signal(int signo) {
  if (!allowed_signal(signo)) {
    throw ConfigError(fmt::format("preempt_signal {} is not allowed: use SIGURG ({}), SIGUSR1 ({}), SIGUSR2 ({}) or a "
                                  "real-time signal SIGRTMIN..SIGRTMAX ({}..{})",
                                  signo, SIGURG, SIGUSR1, SIGUSR2, SIGRTMIN, SIGRTMAX));
  }
  const int installed = g_signo.load(std::memory_order_acquire);
  if (installed != 0 && installed != signo) {
    throw ConfigError(fmt::format("preempt_signal {} differs from signal {}, which an earlier runtime of this process "
                                  "installed its handler for: one process uses one preemption signal",
                                  signo, installed));
  }
}

void install_preempt_handler(int signo) {
  int expected = 0;
  if (g_signo.load(std::memory_order_acquire) == signo) return;
  if (g_signo.load(std::memory_order_acquire) != 0) {
    sky_fatal("the preemption signal was %d for an earlier runtime of this process; it cannot change to %d "
              "(validate_preempt_signal should have refused)",
              g_signo.load(), signo);
  }
  g_pid = getpid();
  g_uid = getuid();
  g_token = reinterpret_cast<void*>((static_cast<std::uintptr_t>(__rdtsc()) << 16) ^ reinterpret_cast<std::uintptr_t>(&g_token) ^ 0x5c7f10f7ull);
  g_nudge_token = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(g_token) ^ 1);
  sky_xsave_size = xsave_area_size();
  refresh_unsafe_ranges();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &on_preempt_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  // Ours is installed before g_signo is published, so the program's sigaction() calls for this signal
  // (sigaction.cpp) reach the kernel until then and are recorded as the forward target afterwards.
  std::lock_guard<SpinLock> g(g_forward_lock);
  real_sigaction(signo, &sa, &g_forward[0]);
  g_forward_current.store(0, std::memory_order_release);
  g_signo.compare_exchange_strong(expected, signo, std::memory_order_acq_rel);
}

bool record_program_action(int signo, const struct sigaction* act, struct sigaction* old) noexcept {
  if (signo == 0 || signo != g_signo.load(std::memory_order_acquire)) return false;
  std::lock_guard<SpinLock> g(g_forward_lock);
  const int cur = g_forward_current.load(std::memory_order_relaxed);
  if (old != nullptr) *old = g_forward[cur];
  if (act != nullptr) {
    g_forward[1 - cur] = *act;
    g_forward_current.store(1 - cur, std::memory_order_release);
  }
  return true;
}

void set_unsafe_deferral_hook(UnsafeDeferralHook hook, void* arg) noexcept {
  g_unsafe_hook.store(nullptr, std::memory_order_release);
  g_unsafe_hook_arg.store(arg, std::memory_order_relaxed);
  g_unsafe_hook.store(hook, std::memory_order_release);
}

std::uint32_t unsafe_deferrals(const Processor& p) noexcept {
  return g_quick[static_cast<std::size_t>(p.index)].seq.load(std::memory_order_acquire);
}

std::uint64_t quick_retry_delay_ns(std::uint64_t quantum_ns) noexcept {
  // A fraction of the quantum, at least kMinQuickRetryNs (each signal costs the core ~7 us on a VM), plus
  // up to half as much again of jitter from the TSC, so consecutive tries sample different loop phases.
  constexpr std::uint64_t kMinQuickRetryNs = 10'000;
  const std::uint64_t base = std::max(quantum_ns / 8, kMinQuickRetryNs);
  std::uint64_t x = __rdtsc();
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 32;
  return base + x % (base / 2 + 1);
}

namespace {
void send_to_thread(const Processor& p, void* token) noexcept {
  KThread* kt = p.kthread.load(std::memory_order_acquire);
  if (kt == nullptr) return;
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  info.si_signo = g_signo.load(std::memory_order_relaxed);
  info.si_code = SI_QUEUE;
  info.si_pid = g_pid;
  info.si_uid = g_uid;
  info.si_value.sival_ptr = token;
  syscall(SYS_rt_tgsigqueueinfo, g_pid, kt->tid, info.si_signo, &info);
}
}  // namespace

void request_preemption(Processor& p, bool signal) noexcept {
  p.preempt_word->store(kPreemptNow, std::memory_order_release);
  if (signal) send_to_thread(p, g_token);
}

void nudge_thread(Processor& p) noexcept {
  if (g_signo.load(std::memory_order_acquire) != 0) send_to_thread(p, g_nudge_token);
}

}  // namespace skyloft
