// task_tls.hpp (internal) - per-task thread-locals: each task gets a static TLS block and thread control
// block (TCB) of its own, as a glibc thread would, and every switch points the FS base at the incoming
// context's block. Then `thread_local`, `__thread`, errno and every library's thread cache (glibc's malloc
// tcache, a jemalloc/tcmalloc thread cache) belong to the task: preempting or migrating it never lets
// another task see or corrupt them. Off by default (Config::task_tls); on under skyloft-run.
//
// Rules:
//   T1. A block is made by glibc's own allocator (_dl_allocate_tls): every module's static TLS starts from
//       its init image, and the dtv lets __tls_get_addr give the task dynamic TLS lazily, as for a new
//       thread. It is freed with the task (_dl_deallocate_tls), after the task left the CPU.
//   T2. The TCB's process-wide words (stack protector and pointer guards, sysinfo, CET features) are copied
//       from the thread that prepared the layout; tcb/self point at the block. glibc's thread id field gets
//       a per-task value above every real tid: the dynamic loader's recursive locks compare it, and two
//       tasks with one id would both "own" such a lock. The rseq area says "not registered" (sched_getcpu
//       asks the vDSO instead), and __resp points at the block's own resolver state.
//   T3. The runtime's own thread-locals describe the kernel thread, not the task: sky_tl_proc and
//       skyloft_preempt_word travel with the thread, sky_tl_current names the incoming task. Every switch
//       into a context with a block writes them into that block, then moves the KThread's redirect slots
//       there, then the FS base (task_tls_enter): a signal handler sees a consistent set at every
//       instruction, and the monitor's redirect (handoff.cpp) always lands in the block in use.
//   T4. A task's thread_local destructors run in the task when its body ends (__call_tls_dtors), as at a
//       thread's exit.
//   T5. setuid/setgid and friends signal every thread and wait until each handler marked THAT thread's
//       struct pthread done; on a kernel thread running a task THREAD_SELF is the task's block, so glibc's
//       handler is wrapped to run on the thread's own block. glibc installs it in the process's first
//       pthread_create, so the wrap is made once the runtime's threads exist (task_tls_threads_started).
// What still differs from a native thread is listed in the README (per-task TLS).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "arch/thread_pointer.hpp"

namespace skyloft {

class Task;
struct Processor;
struct KThread;

// Where things sit relative to a thread pointer; found once per process (task_tls_prepare), then read-only.
struct TaskTlsLayout {
  std::ptrdiff_t current = 0;   // sky_tl_current
  std::ptrdiff_t proc = 0;      // sky_tl_proc
  std::ptrdiff_t preempt = 0;   // skyloft_preempt_word
};
extern TaskTlsLayout g_task_tls;

// Finds glibc's layout and entry points; thread-safe, idempotent. Returns why per-task TLS cannot work
// here, or an empty string.
std::string task_tls_prepare();

// T5: glibc's credential-change handler runs on the kernel thread's own block. Called once the runtime's
// threads exist, before any task runs: glibc installs that handler in the first pthread_create.
void task_tls_threads_started();

// A new block for task `id` (T1, T2); returns its thread pointer. Throws std::bad_alloc.
void* task_tls_create(std::uint64_t id);
void task_tls_destroy(void* tp) noexcept;

// T2: what glibc's start_thread does in a new thread's own block before its function runs: the ctype
// tables (isspace, toupper: thread-locals that start null). Called first thing in the task.
void task_tls_started() noexcept;

// T4: runs the calling task's thread_local destructors.
void task_tls_run_destructors() noexcept;

// The program's main thread under the POSIX layer. Its constructors ran natively, so their thread-locals
// are in the thread's own block; main's task takes that block over (task_tls_adopt, first thing in the
// task), while the thread itself waits on a fresh one (task_tls_move_thread) and returns to its own once
// main's task is gone (task_tls_return_thread). The thread's rseq registration is dropped on the way: the
// kernel would keep writing the thread's CPU into the block the task now reads.
void* task_tls_move_thread();                  // returns the thread's own thread pointer
void task_tls_return_thread(void* own) noexcept;
void task_tls_adopt(void* tp) noexcept;         // the calling task continues on `tp`; its own block is freed
bool task_tls_on() noexcept;                    // the running runtime gives tasks blocks of their own

// T3: called on the way into the context whose block is `tp`, with `incoming` the task it runs (nullptr for
// a thread's loop).
void task_tls_enter(void* tp, Task* incoming, KThread* kt) noexcept;

}  // namespace skyloft
