// signal.cpp - the preemption signal handler: the handler decides, safe points act (Go, Caladan).
//
// When the preemption signal arrives on a runtime thread:
//   1. A signal the runtime did not send (another process, or the program's own kill/raise) goes to the
//      handler that was installed before ours.
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
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "arch/context.hpp"
#include "core/fatal.hpp"
#include "core/kthread.hpp"
#include "core/processor.hpp"
#include "core/scheduler.hpp"
#include "preempt/mechanism.hpp"
#include "preempt/safe_point.hpp"
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
struct sigaction g_previous;  // written once at install, before the handler can run
pid_t g_pid = 0;

#if SKY_TSAN
constexpr bool kSignalsDeliveredLate = true;
#else
constexpr bool kSignalsDeliveredLate = false;
#endif

// Signals we send: tgkill from this process (SI_TKILL) or an expiry of a POSIX timer (SI_TIMER).
bool sent_by_runtime(const siginfo_t* info) noexcept {
  if (info->si_code == SI_TIMER) return true;
  return info->si_code == SI_TKILL && info->si_pid == g_pid;
}

void forward_to_previous(int sig, siginfo_t* info, void* context) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction != nullptr) g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  }
  // SIG_DFL of the preemption signals we allow (SIGURG, SIGUSR*, real-time) would terminate or ignore;
  // a signal nobody handled is dropped rather than killing the process the runtime runs in.
}

void on_preempt_signal(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  Processor* p = this_proc();
  Task* t = sky_tl_current;
  if (p == nullptr || !sent_by_runtime(info)) {
    if (!sent_by_runtime(info)) forward_to_previous(sig, info, context);
    errno = saved_errno;
    return;
  }
  if (t != nullptr && p->track_run_start &&
      now_ns() - p->run_start_ns.load(std::memory_order_relaxed) < p->min_run_ns) {
    t = nullptr;  // a tick for the previous run, delivered after the switch: not this run's quantum
  }
  if (t != nullptr) {
    p->preempt_flag.store(1, std::memory_order_relaxed);
    auto* uc = static_cast<ucontext_t*>(context);
    greg_t* regs = uc->uc_mcontext.gregs;
    auto pc = static_cast<std::uintptr_t>(regs[REG_RIP]);
    auto sp = static_cast<std::uintptr_t>(regs[REG_RSP]);
    // A blocking system call interrupted by this signal is restarted by re-executing its `syscall`
    // instruction (0f 05), to which the kernel rewound the PC: never redirect there (the hand-off relies
    // on a thread blocked in a call not running task code, core/handoff.cpp H3).
    const auto* insn = reinterpret_cast<const unsigned char*>(pc);
    const bool at_syscall = insn[0] == 0x0f && insn[1] == 0x05;
    if (!kSignalsDeliveredLate && !at_syscall && async_safe_point(*t, pc, sp)) {
      t->preempt_off.store(1, std::memory_order_relaxed);  // sky_preempt_entry clears it
      std::atomic_signal_fence(std::memory_order_seq_cst);
      sp -= 128 + sizeof(std::uintptr_t);  // skip the red zone, then "push" the interrupted PC
      *reinterpret_cast<std::uintptr_t*>(sp) = pc;
      regs[REG_RSP] = static_cast<greg_t>(sp);
      regs[REG_RIP] = reinterpret_cast<greg_t>(&sky_preempt_trampoline);
    } else if (p->index >= 0) {
      p->preempt_deferred.add();
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

}  // namespace

int preempt_signal() noexcept { return g_signo.load(std::memory_order_relaxed); }

void install_preempt_handler(int signo) {
  int expected = 0;
  if (!g_signo.compare_exchange_strong(expected, signo)) {
    if (expected != signo) {
      sky_fatal("the preemption signal was %d for an earlier runtime of this process; it cannot change to %d",
                expected, signo);
    }
    return;
  }
  g_pid = getpid();
  sky_xsave_size = xsave_area_size();
  refresh_unsafe_ranges();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &on_preempt_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(signo, &sa, &g_previous);
}

void request_preemption(Processor& p, bool signal) noexcept {
  p.preempt_flag.store(1, std::memory_order_release);
  if (!signal) return;
  if (KThread* kt = p.kthread.load(std::memory_order_acquire)) tgkill(g_pid, kt->tid, g_signo.load(std::memory_order_relaxed));
}

}  // namespace skyloft
