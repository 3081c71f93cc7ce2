// preempt.cpp - the preemption signal handler, the safe-point rules, and acting on a preemption.
//
// The handler decides, safe points act (Go, Caladan). When a preemption signal arrives on a worker:
//   1. It raises the worker's flag (so a deferred request is honoured at the next preempt point or runtime
//      exit) and returns at once unless the interrupted code is at an async safe point:
//        a. the worker runs a task (not its loop);
//        b. the worker is not inside the runtime (preempt_off == 0) and the task holds no preempt_disable();
//        c. the interrupted PC is not in libc, the dynamic loader, libgcc, libstdc++ or a sanitizer runtime
//           (they may hold internal locks: preempting there could deadlock another task on this worker);
//        d. the stack has room for the register frame and the XSAVE area above the guard page.
//      Under ThreadSanitizer a handler runs late (at TSan's next synchronisation point) and receives a copy
//      of the interrupted context, so a redirect would be lost: there, every interrupt only raises the flag
//      and preemption happens at preempt points and runtime entries (the flag mechanism's behaviour).
//   2. At a safe point it sets preempt_off (so nothing nests) and redirects the interrupted context to
//      sky_preempt_trampoline: the interrupted PC is pushed below the red zone. It never switches stacks.
//   3. The trampoline saves the registers and the full vector state and calls sky_preempt_entry(), which
//      runs on the task's stack with the signal mask restored and asks the policy's tick whether to yield.
// Deferred requests are retried: the timer ticks again, and the dispatcher re-sends while the same run
// continues. Spurious or stale signals are harmless: the flag is cleared at each dispatch.
#include <cpuid.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "arch/context.hpp"
#include "core/fatal.hpp"
#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "preempt/mechanism.hpp"
#include "skyloft/preempt.hpp"
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
std::uint32_t g_zero_word = 0;
}  // namespace

namespace detail {
extern "C" {
__thread std::uint32_t* skyloft_preempt_word __attribute__((tls_model("initial-exec"))) = &g_zero_word;
}
}  // namespace detail

namespace {

struct PcRange {
  std::uintptr_t lo, hi;
};
constexpr int kMaxRanges = 32;
PcRange g_unsafe[kMaxRanges];
int g_num_unsafe = 0;
std::atomic<bool> g_handler_installed{false};

bool is_unsafe_object(const char* name) {
  static const char* const kPrefixes[] = {"libc.so", "ld-linux", "libgcc_s", "libstdc++", "libasan", "libtsan",
                                          "libubsan", "libpthread", "libm.so"};
  const char* base = std::strrchr(name, '/');
  base = base ? base + 1 : name;
  for (const char* p : kPrefixes) {
    if (std::strncmp(base, p, std::strlen(p)) == 0) return true;
  }
  return false;
}

#if SKY_TSAN
constexpr bool kSignalsDeliveredLate = true;
#else
constexpr bool kSignalsDeliveredLate = false;
#endif

int collect_unsafe_ranges(dl_phdr_info* info, std::size_t, void*) {
  if (info->dlpi_name == nullptr || !is_unsafe_object(info->dlpi_name)) return 0;
  for (int i = 0; i < info->dlpi_phnum && g_num_unsafe < kMaxRanges; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    g_unsafe[g_num_unsafe++] = PcRange{lo, lo + ph.p_memsz};
  }
  return 0;
}

bool pc_is_unsafe(std::uintptr_t pc) noexcept {
  for (int i = 0; i < g_num_unsafe; ++i) {
    if (pc >= g_unsafe[i].lo && pc < g_unsafe[i].hi) return true;
  }
  return false;
}

void on_preempt_signal(int, siginfo_t*, void* context) {
  int saved_errno = errno;
  Worker* w = this_worker();
  Task* t = sky_tl_current;
  if (t != nullptr && w != nullptr && w->track_run_start &&
      now_ns() - w->run_start_ns.load(std::memory_order_relaxed) < w->min_run_ns) {
    t = nullptr;  // a tick for the previous run, delivered after the switch: not this run's quantum
  }
  if (t != nullptr && w != nullptr) {
    w->preempt_flag.store(1, std::memory_order_relaxed);
    auto* uc = static_cast<ucontext_t*>(context);
    greg_t* regs = uc->uc_mcontext.gregs;
    auto pc = static_cast<std::uintptr_t>(regs[REG_RIP]);
    auto sp = static_cast<std::uintptr_t>(regs[REG_RSP]);
    auto stack_floor = reinterpret_cast<std::uintptr_t>(t->ctx.stack_lo) + sky_xsave_size + 1024;
    bool safe = !kSignalsDeliveredLate && t->preempt_off.load(std::memory_order_relaxed) == 0 &&
                !pc_is_unsafe(pc) && sp > stack_floor;
    if (safe) {
      t->preempt_off.store(1, std::memory_order_relaxed);  // sky_preempt_entry clears it
      std::atomic_signal_fence(std::memory_order_seq_cst);
      sp -= 128 + sizeof(std::uintptr_t);  // skip the red zone, then "push" the interrupted PC
      *reinterpret_cast<std::uintptr_t*>(sp) = pc;
      regs[REG_RSP] = static_cast<greg_t>(sp);
      regs[REG_RIP] = reinterpret_cast<greg_t>(&sky_preempt_trampoline);
    } else {
      w->preempt_deferred.add();
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

int preempt_signal() noexcept { return SIGURG; }

void install_preempt_handler() {
  if (g_handler_installed.exchange(true)) return;
  sky_xsave_size = xsave_area_size();
  dl_iterate_phdr(&collect_unsafe_ranges, nullptr);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &on_preempt_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGURG, &sa, nullptr);
}

void request_preemption(Worker& w, bool signal) noexcept {
  w.preempt_flag.store(1, std::memory_order_release);
  if (signal) tgkill(getpid(), w.tid, SIGURG);
}

// Acts on an expired quantum. Called on the task's stack with preempt_off == 1 (a runtime section).
void preempt_now(Worker* w) noexcept {
  w->preempt_flag.store(0, std::memory_order_relaxed);
  Task* cur = w->current;
  if (cur == nullptr) return;
  // A request that raced with a dispatch (a periodic timer's phase, a ticker that read the previous run)
  // must not cost the new run its quantum before it has even reached its own code.
  if (w->track_run_start && now_ns() - w->run_start_ns.load(std::memory_order_relaxed) < w->min_run_ns) return;
  w->preempt_checks.add();
  if (!w->policy->tick(w->index, cur)) return;
  w->preemptions.add();
  task_yield_locked(w, cur);
}

extern "C" __attribute__((visibility("hidden"))) void sky_preempt_entry() {
  Task* t = current_task();  // the handler set t->preempt_off to 1, so the task stays put until below
  preempt_now(this_worker());
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t->preempt_off.store(0, std::memory_order_relaxed);
}

namespace detail {
void preempt_point_slow() noexcept {
  Task* t = current_task();
  if (t == nullptr || t->preempt_off.load(std::memory_order_relaxed) != 0) return;
  RuntimeSection::enter(t);
  RuntimeSection::leave(t);  // honours the flag
}
}  // namespace detail

void preempt_disable() noexcept {
  if (Task* t = current_task()) RuntimeSection::enter(t);
}

void preempt_enable() noexcept {
  Task* t = current_task();
  if (t != nullptr && t->preempt_off.load(std::memory_order_relaxed) != 0) RuntimeSection::leave(t);
}

}  // namespace skyloft
