// fatal.cpp - fatal errors, and naming the task whose stack overflowed into its guard page.
#include "core/fatal.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/scheduler.hpp"
#include "core/stack_pool.hpp"
#include "core/task.hpp"
#include "core/worker.hpp"

namespace skyloft {
namespace {

std::atomic<bool> g_fault_handler_installed{false};
struct sigaction g_previous_segv;
struct sigaction g_previous_bus;
thread_local void* tl_alt_stack = nullptr;

void write_stderr(const char* s) noexcept {
  std::size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
  Worker* w = this_worker();
  Task* t = w ? w->current : nullptr;
  if (t != nullptr) {
    auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    auto guard_lo = reinterpret_cast<std::uintptr_t>(t->stack.base);
    auto guard_hi = reinterpret_cast<std::uintptr_t>(t->ctx.stack_lo);
    // The guard page, or just below it (a large frame can skip over the page).
    if (addr < guard_hi && addr + 64 * 1024 >= guard_lo) {
      sky_fatal("stack overflow in task %llu (stack of %zu bytes; fault at %p): spawn it with a larger "
                "SpawnOptions::stack_size",
                static_cast<unsigned long long>(t->sched.id), t->ctx.stack_size, info->si_addr);
    }
  }
  // Not ours: hand the fault to whoever handled it before (a sanitizer, or the default action).
  const struct sigaction& prev = sig == SIGSEGV ? g_previous_segv : g_previous_bus;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) {
      prev.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void sky_fatal(const char* fmt, ...) noexcept {
  char buf[512];
  std::memcpy(buf, "skyloft: ", 9);
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf + 9, sizeof buf - 11, fmt, ap);
  va_end(ap);
  std::size_t len = 9 + (n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 11));
  buf[len] = '\n';
  buf[len + 1] = '\0';
  write_stderr(buf);
  std::abort();
}

void install_fault_handler() {
  if (g_fault_handler_installed.exchange(true)) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous_segv);
  sigaction(SIGBUS, &sa, &g_previous_bus);
}

void install_fault_stack() {
  // The overflowing task's stack cannot hold the handler's frame, so each worker has an alternate stack.
  std::size_t size = 64 * 1024;
  tl_alt_stack = std::malloc(size);
  stack_t ss{};
  ss.ss_sp = tl_alt_stack;
  ss.ss_size = size;
  sigaltstack(&ss, nullptr);
}

void remove_fault_stack() {
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  std::free(tl_alt_stack);
  tl_alt_stack = nullptr;
}

}  // namespace skyloft
