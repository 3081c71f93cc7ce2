// os_thread.cpp - kernel threads through glibc's own pthread_create; see os_thread.hpp.
#include "core/os_thread.hpp"

#include <dlfcn.h>
#include <sys/prctl.h>

#include <cstring>

#include "arch/context.hpp"
#include "core/fatal.hpp"

namespace skyloft {
namespace {

using CreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
using JoinFn = int (*)(pthread_t, void**);
using GetattrFn = int (*)(pthread_t, pthread_attr_t*);

struct RealPthread {
  CreateFn create = nullptr;
  JoinFn join = nullptr;
  GetattrFn getattr = nullptr;
};

// Resolved once, on first use (never from a signal handler).
const RealPthread& real() {
  static const RealPthread r = [] {
    RealPthread out;
#if SKY_ASAN || SKY_TSAN
    out.create = &pthread_create;
    out.join = &pthread_join;
    out.getattr = &pthread_getattr_np;
#else
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    auto find = [libc](const char* name, const char* version) -> void* {
      void* f = libc ? dlvsym(libc, name, version) : nullptr;
      return f ? f : dlsym(libc ? libc : RTLD_DEFAULT, name);
    };
    out.create = reinterpret_cast<CreateFn>(find("pthread_create", "GLIBC_2.34"));
    out.join = reinterpret_cast<JoinFn>(find("pthread_join", "GLIBC_2.34"));
    out.getattr = reinterpret_cast<GetattrFn>(find("pthread_getattr_np", "GLIBC_2.32"));
    if (out.create == nullptr || out.join == nullptr || out.getattr == nullptr) {
      sky_fatal("cannot find glibc's pthread_create/pthread_join/pthread_getattr_np");
    }
#endif
    return out;
  }();
  return r;
}

struct Start {
  OsThread::Fn fn;
  void* arg;
  char name[16];
};

void* thread_start(void* p) {
  Start s = *static_cast<Start*>(p);
  delete static_cast<Start*>(p);
  prctl(PR_SET_NAME, s.name, 0, 0, 0);
  s.fn(s.arg);
  return nullptr;
}

}  // namespace

void OsThread::start(Fn fn, void* arg, const char* name) {
  auto* s = new Start{fn, arg, {}};
  std::strncpy(s->name, name, sizeof s->name - 1);
  int rc = real().create(&handle_, nullptr, &thread_start, s);
  if (rc != 0) sky_fatal("cannot create runtime thread %s: %s", name, std::strerror(rc));
  started_ = true;
}

void OsThread::join() noexcept {
  if (!started_) return;
  real().join(handle_, nullptr);
  started_ = false;
}

void os_thread_stack(void** lo, std::size_t* size) noexcept {
  pthread_attr_t attr;
  *lo = nullptr;
  *size = 0;
  if (real().getattr(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, lo, size);
    pthread_attr_destroy(&attr);
  }
}

}  // namespace skyloft
