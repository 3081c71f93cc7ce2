// config.hpp - runtime configuration: which policy, which cores, stack and idle settings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace skyloft {

// Thrown for invalid configuration or arguments; the message names the bad value and what is allowed.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

inline constexpr std::size_t kDefaultStackSize = 128 * 1024;
inline constexpr std::size_t kMinStackSize = 16 * 1024;  // a stack with a guard page
// A guardless stack (StackGuard::off). The task's record, its callable and the frames of a task parked in
// a skyloft primitive take ~750 bytes at the top; library calls may need far more (printf: several KiB;
// the first call of a lazily bound library function: ~3.5 KiB in the dynamic loader; see the README).
inline constexpr std::size_t kMinGuardlessStackSize = 2 * 1024;
inline constexpr std::size_t kMaxStackSize = std::size_t{1} << 30;  // 1 GiB
inline constexpr std::size_t kMaxWorkers = 256;

struct Config {
  // Scheduling policy by name ("fifo", "sq", or one registered with register_policy()).
  std::string policy = "fifo";
  // Policy parameters applied at start, "key=value[,key=value...]" (Policy::set_param; e.g. cfs's
  // "latency_us=4000,wakeup_granularity_us=200"). A key the policy rejects is a ConfigError.
  std::string policy_params;
  // Core list such as "0-1,4". nullopt: every core this process may run on. An empty string is an error.
  std::optional<std::string> cores;
  // Default task stack size in bytes. A guarded stack is rounded up to whole pages and gets a guard page
  // below it; a guardless one is rounded up to 64 bytes below a page and to whole pages above.
  std::size_t stack_size = kDefaultStackSize;
  // Guard pages for stacks spawned with StackGuard::config. false: stacks are carved from shared slabs
  // (many stacks per mapping) with a canary word checked at every switch-out; this lifts the ~32k cap on
  // live tasks that vm.max_map_count puts on guarded stacks, and allows stacks down to 2 KiB.
  bool stack_guard = true;
  // How long an idle worker spins looking for work before it parks on a futex. Waking a parked worker
  // costs ~21 us on a VM whose idle vCPUs halt, so spinning trades CPU for wake-up latency.
  std::uint32_t spin_us = 50;
  // While spinning, yield the core (sched_yield) between looks for work instead of PAUSE: alone on its core
  // a worker looks again within ~0.2 us, but a thread of another process sharing the core (a client, a
  // load generator) runs at once instead of waiting for the spin to end. Measured on a 2-core VM serving
  // memcaslap over loopback: 1.3-1.6x the requests/s of a PAUSE spin.
  bool spin_yield = true;
  // Centralized policies: the core of the dispatcher thread (-1: the first listed core). Workers get the
  // other listed cores.
  int dispatcher_core = -1;
  // The worker threads' EEVDF slice in microseconds (sched_attr.sched_runtime, Linux 6.12+; 100..100000),
  // or 0 for the kernel's default (~3 ms). Where the cores are shared with other processes (a client, a
  // load generator), a woken worker with the default slice waits for the running thread's slice to end:
  // memcached under skyloft-run with the load generator on the same 2 cores had p99 ~1.25 ms at 60k/s,
  // ~0.2 ms with 100 us. Kernels without custom slices ignore it.
  std::uint32_t worker_slice_us = 0;
  // Pin each worker to its core with sched_setaffinity. Unpinned, a worker thread may run on any core
  // of the process's affinity mask (a runtime sharing its cores with other busy processes).
  bool pin_workers = true;
  // Preemption mechanism: "none", "timer", "dispatcher", "flag", "hybrid" or "uintr" (see the README).
  std::string preempt = "none";
  // Quantum (time slice) in microseconds: how long a task may run while another waits for its core.
  std::uint32_t quantum_us = 100;
  // hybrid: how long after raising the flag the task gets to reach a preempt point before it is signalled.
  std::uint32_t hybrid_grace_us = 20;
  // Blocked-thread hand-off: a kernel thread blocked in the kernel (inside a BlockingSection, or found
  // asleep by the monitor) for longer than this while other tasks wait for its core loses the core to a
  // spare thread. 0 turns the hand-off off. Range 0 .. 1000000.
  std::uint32_t handoff_us = 100;
  // Stall watchdog: report (stderr, with the policy's dump()) a worker whose runnable tasks have waited
  // this long without any scheduling decision. 0: off (run-to-completion policies stall by design).
  std::uint32_t stall_ms = 0;
  // The signal preemption and the hand-off use (SIGURG by default, as Go does): SIGURG, SIGUSR1, SIGUSR2
  // or a real-time signal SIGRTMIN..SIGRTMAX; one per process (a later runtime must use the same one).
  // Signals of this number that the runtime did not send go to the program's own handler.
  int preempt_signal = 23;  // SIGURG
  // I/O backend (io.hpp): "auto" (io_uring where the kernel allows it, else epoll, announced on stderr),
  // "uring" or "epoll".
  std::string io_backend = "auto";
  // Per-task thread-locals: every task gets a static TLS block and thread control block of its own, as a
  // glibc thread would, so thread_local/__thread variables, errno and library thread caches (glibc's malloc
  // tcache) are per task and survive preemption and migration. Costs a block (~a few KiB, glibc's static
  // TLS size) per task and a few ns per switch; skyloft-run turns it on. Not in sanitizer builds (the
  // sanitizers keep their per-thread state in TLS). See the README's per-task TLS section for what still
  // differs from a native thread.
  bool task_tls = false;

  // Socket of a skyloftd to join (several apps then share the daemon's cores); nullopt: run standalone on
  // `cores`. An empty string is an error.
  std::optional<std::string> daemon;
  // Under a daemon: the class the app registers with, "lc" (latency-critical: takes a core from a BE app
  // within tens of microseconds while it has queued work) or "be" (best-effort: runs on cores no LC app
  // wants, shared fairly with the other BE apps); the name skyloft-stat shows ([A-Za-z0-9._-], 1..32;
  // empty: the program's name); the cores it asks for (the daemon's initial grant, 1..64); and the slice
  // after which an app hands a core to another app of its own class that waits for it (100..1000000 us).
  std::string app_class = "be";
  std::string app_name;
  std::uint32_t app_demand = 1;
  std::uint32_t share_slice_us = 1000;

  // Libraries whose code must never be interrupted by a preemption (as libc, the dynamic loader, libgcc,
  // libstdc++ and libm never are): file-name prefixes such as "libjemalloc.so", matched against the base
  // name of every loaded object, also of those loaded later with dlopen. An empty name, or one with a '/',
  // is an error.
  std::vector<std::string> no_preempt_libs;

  // Reads SKYLOFT_POLICY, SKYLOFT_CORES, SKYLOFT_STACK_SIZE, SKYLOFT_STACK_GUARD (0 or 1), SKYLOFT_SPIN_US,
  // SKYLOFT_DISPATCHER_CORE, SKYLOFT_PREEMPT, SKYLOFT_QUANTUM_US, SKYLOFT_HYBRID_GRACE_US, SKYLOFT_HANDOFF_US,
  // SKYLOFT_STALL_MS, SKYLOFT_PREEMPT_SIGNAL (a number, or a name: URG, USR1, USR2, RTMIN, RTMIN+n, RTMAX-n,
  // with or without "SIG"), SKYLOFT_NO_PREEMPT_LIBS (colon-separated prefixes), SKYLOFT_DAEMON,
  // SKYLOFT_APP_CLASS, SKYLOFT_APP_NAME, SKYLOFT_APP_DEMAND, SKYLOFT_SHARE_SLICE_US, SKYLOFT_IO_BACKEND,
  // SKYLOFT_PIN_WORKERS, SKYLOFT_WORKER_SLICE_US and SKYLOFT_TASK_TLS (0 or 1) over the defaults above. A variable that is set but malformed throws ConfigError.
  static Config from_env();
};

// Parses a core list ("0-3,6,8-9") into sorted unique core ids. Throws ConfigError on bad syntax, an empty
// list, a reversed range, or a core >= kMaxWorkers * 4.
std::vector<int> parse_core_list(const std::string& text);

// The cores this process may run on (sched_getaffinity), ascending.
std::vector<int> allowed_cores();

// Formats core ids back into compact list syntax ("0-3,6").
std::string format_core_list(const std::vector<int>& cores);

}  // namespace skyloft
