// os_thread.hpp - the runtime's own kernel threads, created without the public pthread symbols.
//
// An interposition layer (LD_PRELOAD) replaces pthread_create and friends to turn program threads into
// tasks; the runtime's workers, spares, ticker, dispatcher and monitor must stay real kernel threads. So
// this looks up glibc's own pthread_create/pthread_join by version in libc itself (dlvsym on the loaded
// libc.so.6), which no interposer can shadow. Sanitizer builds call the symbols directly so that the
// sanitizer's interceptors see the threads.
#pragma once

#include <pthread.h>

#include <cstddef>

namespace skyloft {

class OsThread {
 public:
  using Fn = void (*)(void*);
  OsThread() = default;
  OsThread(const OsThread&) = delete;
  OsThread& operator=(const OsThread&) = delete;

  // Starts fn(arg) on a new kernel thread; `name` (<= 15 chars) is set with prctl. Aborts on failure
  // (the runtime cannot run without its threads).
  void start(Fn fn, void* arg, const char* name);
  void join() noexcept;
  bool joinable() const noexcept { return started_; }

 private:
  pthread_t handle_{};
  bool started_ = false;
};

// The calling thread's stack bounds (for the sanitizers' view of a thread's loop context).
void os_thread_stack(void** lo, std::size_t* size) noexcept;

}  // namespace skyloft
