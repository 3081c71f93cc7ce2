// fatal.hpp - invariant checks and fatal errors that do not allocate.
#pragma once

namespace skyloft {

// Prints "skyloft: <message>" to stderr with write(2) and aborts. Safe in signal handlers for plain text.
[[noreturn]] void sky_fatal(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));

}  // namespace skyloft

#define SKY_ASSERT(cond)                                                               \
  do {                                                                                 \
    if (__builtin_expect(!(cond), 0))                                                  \
      ::skyloft::sky_fatal("assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__); \
  } while (0)

// Checks a precondition of the runtime's internal contracts (the policy contract among them) in checked
// builds (SKYLOFT_CONTRACT_CHECKS: the debug, asan and tsan presets); compiled out in release.
#if SKYLOFT_CONTRACT_CHECKS
#define SKY_DEBUG_ASSERT(cond) SKY_ASSERT(cond)
#else
#define SKY_DEBUG_ASSERT(cond) \
  do {                         \
  } while (0)
#endif
