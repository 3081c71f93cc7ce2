// dlopen.cpp - dlopen/dlmopen/dlclose wrappers that keep the unsafe-code table (safe_point.cpp) in step
// with the loaded objects: code of a library loaded after the runtime started is classified like code
// loaded at start (libc, libstdc++, a user-named malloc, ... defer preemption).
//
// The program's own calls (and, for the shared build of the runtime, every object loaded after it) bind to
// these definitions; each calls the next definition in lookup order, glibc's (or a sanitizer's interceptor,
// which then calls glibc's), and refreshes the table once the call returned. Why wrappers rather than a
// check at signal time: the handler cannot walk the loaded objects (dl_iterate_phdr takes the loader's lock,
// which the interrupted code may hold), and a PC the table does not know could as well be JIT code.
// Not covered: objects libc loads by itself through its internal dlopen (NSS modules, iconv modules,
// libgcc_s for unwinding); their prefixes are in the table, so they count as unsafe from the next refresh on
// (any dlopen, dlclose or runtime start).
#include <dlfcn.h>

#include <atomic>

#include "arch/context.hpp"
#include "core/fatal.hpp"
#include "preempt/safe_point.hpp"

namespace skyloft {
namespace {

using DlopenFn = void* (*)(const char*, int);
using DlmopenFn = void* (*)(Lmid_t, const char*, int);
using DlcloseFn = int (*)(void*);

// The next definition of `name` after this object (glibc's GLIBC_2.34 version where there is one). Under
// the sanitizers the next one is their interceptor, which must stay in the chain.
void* next_definition(const char* name) noexcept {
  void* f = nullptr;
#if !SKY_ASAN && !SKY_TSAN
  f = dlvsym(RTLD_NEXT, name, "GLIBC_2.34");
#endif
  if (f == nullptr) f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) sky_fatal("cannot find the next definition of %s after the skyloft runtime", name);
  return f;
}

// Resolved on first use; resolving twice is harmless, so no lock (a function-local static's guard would be
// held across code that can be preempted).
template <class Fn>
Fn resolve(std::atomic<Fn>& slot, const char* name) noexcept {
  Fn f = slot.load(std::memory_order_acquire);
  if (f == nullptr) {
    f = reinterpret_cast<Fn>(next_definition(name));
    slot.store(f, std::memory_order_release);
  }
  return f;
}

std::atomic<DlopenFn> g_dlopen{nullptr};
std::atomic<DlmopenFn> g_dlmopen{nullptr};
std::atomic<DlcloseFn> g_dlclose{nullptr};

}  // namespace

// Referenced from safe_point.cpp so that a static link always takes this object: otherwise a program whose
// dlopen is first defined by a shared object on the link line (a sanitizer runtime) would not get these.
bool dlopen_wrappers_linked() noexcept { return true; }

}  // namespace skyloft

extern "C" {

void* dlopen(const char* file, int mode) {
  void* h = skyloft::resolve(skyloft::g_dlopen, "dlopen")(file, mode);
  if (h != nullptr && !(mode & RTLD_NOLOAD)) skyloft::refresh_unsafe_ranges();  // RTLD_NOLOAD loads nothing
  return h;
}

void* dlmopen(Lmid_t lmid, const char* file, int mode) {
  void* h = skyloft::resolve(skyloft::g_dlmopen, "dlmopen")(lmid, file, mode);
  if (h != nullptr && !(mode & RTLD_NOLOAD)) skyloft::refresh_unsafe_ranges();
  return h;
}

int dlclose(void* handle) {
  int rc = skyloft::resolve(skyloft::g_dlclose, "dlclose")(handle);
  // An unloaded object's range may stay in the table until here: only too cautious meanwhile.
  if (rc == 0) skyloft::refresh_unsafe_ranges();
  return rc;
}

}  // extern "C"
