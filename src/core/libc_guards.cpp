// libc_guards.cpp - libc entry points whose callbacks must not be interleaved on one kernel thread.
//
// dl_iterate_phdr runs its callback while holding the dynamic loader's lock, a *recursive* lock owned by
// the kernel thread. If a task were preempted inside the callback, another task on the same thread could
// call dl_iterate_phdr again and enter the loader's critical section while the first is still inside it
// (the lock sees the same owner). So the runtime's definition runs glibc's with the task's preemption
// disabled. A callback that blocks or yields voluntarily still lets another task in; callbacks must not.
//
// Not in sanitizer builds: the sanitizer runtimes call dl_iterate_phdr while they initialise, before any
// symbol lookup can run, and intercept it themselves.
#include <dlfcn.h>
#include <link.h>

#include "arch/context.hpp"
#include "core/fatal.hpp"
#include "skyloft/preempt.hpp"

#if !(SKY_ASAN || SKY_TSAN)
namespace {

using IterateFn = int (*)(int (*)(dl_phdr_info*, std::size_t, void*), void*);

IterateFn real_dl_iterate_phdr() {
  static const IterateFn fn = [] {
    void* f = nullptr;
    if (void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD)) f = dlvsym(libc, "dl_iterate_phdr", "GLIBC_2.2.5");
    if (f == nullptr) f = dlsym(RTLD_NEXT, "dl_iterate_phdr");
    if (f == nullptr) skyloft::sky_fatal("cannot find glibc's dl_iterate_phdr");
    return reinterpret_cast<IterateFn>(f);
  }();
  return fn;
}

}  // namespace

extern "C" int dl_iterate_phdr(int (*callback)(dl_phdr_info*, std::size_t, void*), void* data) {
  skyloft::PreemptGuard guard;
  return real_dl_iterate_phdr()(callback, data);
}
#endif  // !(SKY_ASAN || SKY_TSAN)
