// start.cpp - running the program's main as a task: the interposed __libc_start_main.
//
// Why __libc_start_main and not a constructor: a constructor of this library runs before the program's own
// constructors and cannot run main (it can only return to the loader). Wrapping __libc_start_main lets
// libc finish its start-up and run the program's constructors natively, as on the main thread, and then
// hands us main: we start the runtime, spawn main as a task with a stack as large as a native main's, and
// the program's own exit path runs inside that task exactly as it would on the main thread.
//
// The process's first kernel thread then only waits for main's task:
//   1. main returns rc           -> the main task calls exit(rc): atexit handlers and static destructors
//                                   run in the task while the other threads run on, as natively.
//   2. main calls pthread_exit   -> the main task ends; the first thread waits until every other task has
//                                   ended (Runtime::shutdown), then exits with status 0, as natively when
//                                   the last thread ends.
// A program thread created before main (from a constructor) starts the runtime early (ensure_runtime).
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

#include "core/spinlock.hpp"
#include "core/task_tls.hpp"
#include "posix/real.hpp"
#include "posix/stack_size.hpp"
#include "posix/thread_record.hpp"
#include "skyloft/config.hpp"
#include "skyloft/runtime.hpp"
#include "skyloft/task.hpp"
#include "skyloft/wait.hpp"

using MainFn = int (*)(int, char**, char**);

namespace skyloft::posix {
namespace {

// Written once under g_start_lock, then read-only; never destroyed (tasks run during exit()).
Runtime* g_runtime = nullptr;
SpinLock g_start_lock;
std::atomic<bool> g_started{false};

MainFn g_main = nullptr;
int g_argc = 0;
char** g_argv = nullptr;
char** g_envp = nullptr;

// With per-task TLS: the main thread's own block, which main's task takes over (task_tls.hpp).
void* g_main_block = nullptr;

void main_task(ThreadRecord* rec) {
  if (g_main_block != nullptr) task_tls_adopt(g_main_block);
  this_task::set_local(rec);
  this_task::stack_bounds(&rec->stack_lo, &rec->stack_size);
  struct Finish {
    ThreadRecord* rec;
    // Reached only when main leaves by pthread_exit (the unwind passes here); a return calls exit() first.
    ~Finish() { finish_thread(rec); }
  } finish{rec};
  std::exit(g_main(g_argc, g_argv, g_envp));
}

int skyloft_main(int argc, char** argv, char** envp) {
  g_argc = argc;
  g_argv = argv;
  g_envp = envp;
  ensure_runtime();
  auto* rec = new ThreadRecord;
  prctl(PR_GET_NAME, rec->name, 0, 0, 0);
  rec->join_right.store(kJoinable, std::memory_order_relaxed);
  SpawnOptions opts;
  opts.stack_size = task_stack_for(default_stack_size());
  try {
    if (task_tls_on()) g_main_block = task_tls_move_thread();
    spawn([rec] { main_task(rec); }, opts).detach();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "skyloft: cannot start main as a task: %s\n", e.what());
    if (g_main_block != nullptr) task_tls_return_thread(std::exchange(g_main_block, nullptr));
    return 127;
  }
  // Only a pthread_exit from main gets us here: wait for main's task, then for every other task.
  while (rec->done.load(std::memory_order_acquire) == 0) wait_address(rec->done, 0);
  record_release(rec);
  g_runtime->shutdown();
  if (g_main_block != nullptr) task_tls_return_thread(g_main_block);  // for the exit() libc runs next
  return 0;
}

}  // namespace

void ensure_runtime() noexcept {
  if (g_started.load(std::memory_order_acquire)) return;
  std::lock_guard<SpinLock> guard(g_start_lock);
  if (g_started.load(std::memory_order_relaxed)) return;
  try {
    g_runtime = new Runtime(Config::from_env());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "skyloft: cannot start the runtime: %s\n", e.what());
    _exit(127);
  }
  g_started.store(true, std::memory_order_release);
}

}  // namespace skyloft::posix

extern "C" int __libc_start_main(MainFn main, int argc, char** argv, void (*init)(), void (*fini)(),
                                 void (*rtld_fini)(), void* stack_end) {
  using StartFn = int (*)(MainFn, int, char**, void (*)(), void (*)(), void (*)(), void*);
  static const auto real = skyloft::posix::real_symbol<StartFn>("__libc_start_main", "GLIBC_2.34");
  skyloft::posix::g_main = main;
  return real(&skyloft::posix::skyloft_main, argc, argv, init, fini, rtld_fini, stack_end);
}
