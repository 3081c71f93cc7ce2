// real.hpp - glibc's own definitions of the symbols this layer replaces, for callers that are not tasks.
//
// Found with dlvsym/dlsym(RTLD_NEXT): the next definition after this library in the lookup order, which is
// libc's. A version is asked for where glibc keeps several (pthread_* moved into libc at GLIBC_2.34).
#pragma once

#include <dlfcn.h>

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

// The real `name` as a function pointer of the same type as our definition (resolved once).
#define SKY_REAL(name, version)                                                             \
  ([]() noexcept {                                                                          \
    static const auto fn = ::skyloft::posix::real_symbol<decltype(&::name)>(#name, version); \
    return fn;                                                                              \
  }())
