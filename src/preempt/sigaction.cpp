// sigaction.cpp - the program's sigaction()/signal() for the preemption signal are recorded, not installed.
//
// Once the runtime's handler is installed for the preemption signal, a program that installs its own
// handler for that number (after the runtime started, or a library doing so late) would replace ours and
// silently turn preemption off. These wrappers intercept such calls: the program's action becomes the
// forward target of signals the runtime did not send (signal.cpp), and the "old action" they return is the
// program's previous one, so the program sees the same behaviour as without the runtime. Every other
// signal, and every call before the handler is installed, goes to the next definition (glibc's, or a
// sanitizer's interceptor). Not intercepted: sigset(), sysv_signal() and bsd_signal() (rare; they reach
// the kernel and replace the runtime's handler), and glibc-internal callers.
#include <dlfcn.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "arch/context.hpp"
#include "core/fatal.hpp"
#include "preempt/mechanism.hpp"

namespace skyloft {
namespace {

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);
std::atomic<SigactionFn> g_real_sigaction{nullptr};

SigactionFn next_sigaction() noexcept {
  SigactionFn f = g_real_sigaction.load(std::memory_order_acquire);
  if (f != nullptr) return f;
  void* sym = nullptr;
#if !SKY_ASAN && !SKY_TSAN
  sym = dlvsym(RTLD_NEXT, "sigaction", "GLIBC_2.2.5");
#endif
  if (sym == nullptr) sym = dlsym(RTLD_NEXT, "sigaction");
  if (sym == nullptr) sky_fatal("cannot find the next definition of sigaction after the skyloft runtime");
  f = reinterpret_cast<SigactionFn>(sym);
  g_real_sigaction.store(f, std::memory_order_release);
  return f;
}

}  // namespace

int real_sigaction(int signo, const struct sigaction* act, struct sigaction* old) noexcept {
  return next_sigaction()(signo, act, old);
}

}  // namespace skyloft

extern "C" {

int sigaction(int signo, const struct sigaction* act, struct sigaction* old) {
  if (skyloft::record_program_action(signo, act, old)) return 0;
  return skyloft::real_sigaction(signo, act, old);
}

sighandler_t signal(int signo, sighandler_t handler) {
  // glibc's signal(): BSD semantics (the handler stays installed, interrupted calls restart).
  struct sigaction act, old;
  std::memset(&act, 0, sizeof act);
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  if (handler == SIG_ERR || signo <= 0 || signo >= NSIG) {
    errno = EINVAL;
    return SIG_ERR;
  }
  sigaddset(&act.sa_mask, signo);
  if (sigaction(signo, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

}  // extern "C"
