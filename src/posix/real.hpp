// real.hpp - glibc's own definitions of the symbols this layer replaces, for callers that are not tasks.
//
// Found with dlvsym/dlsym(RTLD_NEXT): the next definition after this library in the lookup order, which is
// libc's. A version is asked for where glibc keeps several (pthread_* moved into libc at GLIBC_2.34).
#pragma once

#include <dlfcn.h>

#include <atomic>

#include "core/fatal.hpp"

namespace skyloft::posix {

template <class Fn>
Fn real_symbol(const char* name, const char* version) noexcept {
  void* f = version ? dlvsym(RTLD_NEXT, name, version) : nullptr;
  if (f == nullptr) f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) sky_fatal("cannot find glibc's %s", name);
  return reinterpret_cast<Fn>(f);
}

}  // namespace skyloft::posix

// The real `name` as a function pointer of the same type as our definition, resolved on first use. Not a
// function-local static: its guard would wait with the futex system call (which this layer interposes)
// when two tasks race on the first call, possibly inside a BlockingSection. Racing lookups find the same
// pointer, so a relaxed atomic suffices.
#define SKY_REAL(name, version)                                                                 \
  ([]() noexcept {                                                                              \
    using Fn = decltype(&::name);                                                               \
    static std::atomic<Fn> cached{nullptr};                                                     \
    Fn fn = cached.load(std::memory_order_relaxed);                                             \
    if (fn == nullptr) {                                                                        \
      fn = ::skyloft::posix::real_symbol<Fn>(#name, version);                                   \
      cached.store(fn, std::memory_order_relaxed);                                              \
    }                                                                                           \
    return fn;                                                                                  \
  }())
