// fatal.hpp - invariant checks and fatal errors that do not allocate.
#pragma once

namespace skyloft {

// Prints "skyloft: <message>" to stderr with write(2) and aborts. Safe in signal handlers for plain text.
[[noreturn]] void sky_fatal(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));

// Installs the SIGSEGV/SIGBUS handler that turns a fault in a task's guard page into a clear
// "stack overflow in task N" message. Idempotent. Each worker calls install_fault_stack() for its
// alternate signal stack (the faulting task's stack is unusable).
void install_fault_handler();
void install_fault_stack();
void remove_fault_stack();

}  // namespace skyloft

#define SKY_ASSERT(cond)                                                               \
  do {                                                                                 \
    if (__builtin_expect(!(cond), 0))                                                  \
      ::skyloft::sky_fatal("assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__); \
  } while (0)
