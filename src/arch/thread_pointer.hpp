// thread_pointer.hpp - the x86-64 thread pointer (the FS base), where glibc keeps a thread's control block
// and its static TLS below it. Moving it is how a task gets thread-locals of its own (core/task_tls.hpp).
#pragma once

namespace skyloft::arch {

// Written once by detect_wrfsbase() before any task exists, read by every switch that moves the FS base.
extern bool g_have_wrfsbase;

// Whether the CPU and kernel let user code write the FS base itself (FSGSBASE, HWCAP2 bit 1, Linux 5.9+);
// records the answer in g_have_wrfsbase. Without it the base moves by a system call (arch_prctl).
bool detect_wrfsbase() noexcept;

// The calling thread's thread pointer: glibc keeps the TCB's own address in its first word.
inline void* thread_pointer() noexcept {
  void* tp;
  asm volatile("movq %%fs:0, %0" : "=r"(tp));
  return tp;
}

void set_thread_pointer_by_syscall(void* tp) noexcept;

// Points FS at `tp`. The memory clobber keeps the compiler from moving thread-local accesses across it.
inline void set_thread_pointer(void* tp) noexcept {
  if (__builtin_expect(g_have_wrfsbase, 1)) {
    asm volatile("wrfsbase %0" : : "r"(tp) : "memory");
  } else {
    set_thread_pointer_by_syscall(tp);
  }
}

}  // namespace skyloft::arch
