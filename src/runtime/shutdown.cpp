// shutdown.cpp - stopping the runtime.
//
// Shutdown protocol:
//   S1. Wait until no task is alive, or until the runtime is quiet: every processor (and the dispatcher) is
//       parked with no timer armed, and the dispatch/spawn counters did not move over two checks 2 ms apart.
//       Then the remaining tasks are blocked on something no task can signal any more.
//   S2. Stop the monitor (no hand-off may start now), set `stopping` and kick every thread; processors
//       drain their runnable tasks and leave their loops, spares leave their parking.
//       Then I/O still in flight is cancelled (io_shutdown; its tasks stay blocked and are reported in S3).
//   S3. Remove the blocked tasks from the wait table, report them (stderr and ShutdownReport), free every
//       stack (StackPool::release_all also reclaims tasks that exited but were never joined).
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "core/app_core.hpp"
#include "core/kthread.hpp"
#include "core/policy_check.hpp"
#include "core/runtime_core.hpp"
#include "core/sysmon.hpp"
#include "core/wait_table.hpp"
#include "io/poller.hpp"
#include "runtime/runtime_impl.hpp"

namespace skyloft {

ShutdownReport stop_runtime(RuntimeCore& rt) {
  if (rt.stopped.exchange(true)) return rt.report;
  // S1
  auto activity = [&rt] {
    std::uint64_t sum = rt.external_spawned.load(std::memory_order_acquire);
    for (const auto& p : rt.procs) sum += p->tasks_run.get() + p->spawned.get();
    return sum;
  };
  auto quiet = [&rt] {
    for (const auto& p : rt.procs) {
      if (!p->parked_forever.load(std::memory_order_acquire)) return false;
      if (rt.policy->nr_waiting(p->index) != 0) return false;  // queued work a kick has not reached yet
    }
    if (!io_quiet(rt)) return false;  // an I/O deadline is pending, as a timer would be
    return rt.dispatcher_core < 0 || rt.dispatcher_parked_forever.load(std::memory_order_acquire);
  };
  for (;;) {
    if (rt.live_tasks() == 0) break;
    std::uint64_t before = activity();
    if (quiet()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (quiet() && activity() == before && rt.live_tasks() != 0) break;
      continue;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  // S2
  if (rt.sysmon) rt.sysmon->stop();
  rt.stopping.store(true, std::memory_order_seq_cst);
  {
    std::lock_guard<SpinLock> g(rt.kthreads_lock);
    for (auto& p : rt.procs) {
      p->park.unpark();
      if (AppCore* ac = shared_core(p.get())) ac->wake_thread();  // app_core.hpp O3s
    }
    for (auto& kt : rt.kthreads) kt->park.unpark();
  }
  rt.dispatcher_park.unpark();
  // Threads are created only by start and the (now stopped) monitor, so the list no longer grows.
  for (auto& kt : rt.kthreads) kt->os.join();
  rt.dispatcher.join();
  rt.preempt->stop();
  io_shutdown(rt, rt.report);  // cancels I/O in flight: the kernel must be done with the tasks' stacks
  policy_check_quiescent(rt.policy->name());
  // S3
  std::vector<Task*> blocked_tasks;
  wait_table_drop_tasks(rt.epoch, rt.report.blocked, blocked_tasks);
  // Tasks parked in join() are not in the wait table: follow the chains from each blocked task.
  for (std::size_t i = 0; i < blocked_tasks.size(); ++i) {
    Task* t = blocked_tasks[i];
    if (t->join_state.load(std::memory_order_acquire) == kJoinTaskWaiting) {
      blocked_tasks.push_back(t->joiner);
      rt.report.blocked.push_back(BlockedTaskInfo{t->joiner->sched.id, WaitReason::join, &t->join_state});
    }
  }
  for (Task* t : blocked_tasks) arch::destroy_context(t->ctx);
  std::int64_t z = rt.zombies.load(std::memory_order_acquire);
  rt.report.unjoined = z > 0 ? static_cast<std::size_t>(z) : 0;
  rt.stacks.release_all();
  if (!rt.report.blocked.empty()) std::fprintf(stderr, "%s", rt.report.describe().c_str());
  return rt.report;
}

}  // namespace skyloft
