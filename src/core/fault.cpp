// fault.cpp - the stack-overflow fault handler and the alternate signal stacks; see fault.hpp.
#include "core/fault.hpp"

#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "core/fatal.hpp"
#include "core/processor.hpp"
#include "core/task.hpp"

namespace skyloft {
namespace {

constexpr std::size_t kSignalStackSize = 64 * 1024;
std::atomic<bool> g_fault_handler_installed{false};
struct sigaction g_previous_segv;
struct sigaction g_previous_bus;

void on_fault(int sig, siginfo_t* info, void* uctx) {
  Processor* p = this_proc();
  Task* t = p ? p->current : nullptr;
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

void* install_signal_stack() {
  void* mem = mmap(nullptr, kSignalStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) sky_fatal("cannot map a signal stack: %s", std::strerror(errno));
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = kSignalStackSize;
  sigaltstack(&ss, nullptr);
  return mem;
}

void remove_signal_stack(void* stack) {
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  if (stack != nullptr) munmap(stack, kSignalStackSize);
}

}  // namespace skyloft
