// poller.hpp (internal) - the per-processor I/O backend and its hooks into the core.
//
// One IoPoller per processor, created at runtime start (io_start) before the processors run, so p->io is
// read-only afterwards. It is the processor's PollSource and its ParkBackend (a processor parked with
// operations in flight sleeps where a completion, as well as ParkWord::unpark(), wakes it; with none in
// flight it sleeps on the plain futex, as before).
//
// Reaping (R1-R3):
//   R1. kPollIo is set on EVERY processor while any poller of the runtime has operations in flight (the
//       0 -> 1 transition of a poller's ops_ counts in busy_pollers and raises the bits; a poller's own
//       driver clears its bit only after seeing busy_pollers == 0, and re-checks after clearing).
//   R2. At its poll point a processor submits its own prepared SQEs, reaps its own completions, and reaps
//       other pollers' completions (uring: a look at their CQ tails at every poll point; epoll: a system
//       call, so at most every 20 us). A long task alone on its core is never interrupted by the
//       tickless preemption, so without R2 its ring would hold completions until it blocks (with uring the
//       kernel holds them for the owner's thread; the helper nudges that thread: uring_poller.cpp U6).
//   R4. A task that runs on keeps its processor from the poll point, and the tickless preemption sees no
//       waiting task: the connection readers whose data sits in that ring stay asleep behind it (measured:
//       a 10 ms request held p90 latency at ~3 ms over TCP, every quantum). So the preemption watcher
//       (the ticker, or the centralized policy's dispatcher thread) asks each running processor's poller
//       (waits_behind_task) once the processor has not passed its poll point for a look interval; with a
//       completion deliverable it preempts the task as if a task waited (ticker.cpp I1).
//   R3. The completion queue has one consumer at a time (cq lock; other processors only try-lock it; the
//       owner holds it while it sleeps in its ring, so the others skip that ring). Submission stays
//       owner-only.
//
// Ownership: submission state is the driving thread's (tasks inside a RuntimeSection, the poll point, the
// park wait); the CQ and counters are shared as above; wake() from any thread; after the processors'
// kernel threads are joined, shutdown owns every poller (io_shutdown).
//
// A completion record belongs to the waiting task (on its stack), never to the processor: it carries the
// result and the word the task waits on in the wait table, so a task that migrated, was preempted or was
// stolen while parked is woken wherever it is.
#pragma once

#include <errno.h>
#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/park.hpp"
#include "core/processor.hpp"

namespace skyloft {

struct RuntimeCore;
struct ShutdownReport;

namespace io_detail {

enum class BackendKind : std::uint8_t { none, uring, epoll, unavailable };

// The result of one operation, filled by the poller that reaps it; the waiting task owns it.
struct alignas(8) Completion {
  std::atomic<std::uint32_t> done{0};  // 0 -> 1 once, by the reaper (seq_cst), then wake_address(&done)
  std::int32_t res = 0;                // >= 0 result, or -errno; written before done
  bool timed = false;                  // has a deadline (the waiting task's own; reapers never read it)
};

// Parks the calling task until c.done (the wait table, WaitReason::io). Task context.
void await(Completion& c) noexcept;
// Publishes `res` and wakes the waiter. The record may be gone as soon as done is stored.
void complete(Completion* c, std::int32_t res) noexcept;

// One operation, as the public layer describes it to a backend.
enum class Op : std::uint8_t { accept, connect, recv, send, recvmsg, sendmsg, read, write, fsync, poll };
struct OpSpec {
  Op op;
  int fd;
  void* buf = nullptr;            // recv/send/read/write
  std::size_t len = 0;
  std::uint64_t offset = 0;       // read/write (files)
  int flags = 0;                  // MSG_* for recv/send/recvmsg/sendmsg, SOCK_* for accept
  const sockaddr* addr = nullptr; // connect
  socklen_t addrlen = 0;
  sockaddr* out_addr = nullptr;   // accept: the peer
  socklen_t* out_len = nullptr;
  msghdr* msg = nullptr;          // recvmsg/sendmsg
  std::uint32_t poll_mask = 0;    // poll: POLLIN / POLLOUT
};

class IoPoller : public PollSource, public ParkBackend {
 public:
  explicit IoPoller(Processor& p) : proc_(p) {}
  virtual BackendKind kind() const noexcept = 0;
  // uring: submits `op` (at the next poll point) and parks the task until it completes or the deadline
  // (absolute now_ns(), UINT64_MAX: none) cancels it. Returns the result or -errno. Task, RuntimeSection.
  // The poller must not be touched after it returns: the task may run on another processor by then.
  virtual std::int32_t submit_and_await(const OpSpec&, std::uint64_t) noexcept { return -ENOSYS; }
  // epoll: parks the task until `fd` shows one of `events` (EPOLLIN/EPOLLOUT) or the deadline passes.
  // Returns the events seen or -ETIMEDOUT. Task, RuntimeSection; same rule as above.
  virtual std::int32_t wait_ready(int, std::uint32_t, std::uint64_t) noexcept { return -ENOSYS; }
  // Operations with a deadline in flight (shutdown waits for them as it waits for timers).
  virtual std::uint32_t timed_in_flight() const noexcept = 0;
  // Shutdown, after the processor's threads stopped: cancels what is in flight; returns how many.
  virtual std::size_t cancel_all() noexcept = 0;

  // PollSource (R1, R2): the driving thread's poll point.
  void poll(Processor& p, std::uint64_t now) noexcept final;
  // R4: the preemption watcher asks whether completions wait for a processor whose task runs on.
  bool waits_behind_task(std::uint64_t now, std::uint64_t stall_ns, std::uint64_t* look_again) noexcept final;
  std::uint32_t ops_in_flight() const noexcept { return ops_.load(std::memory_order_acquire); }

 protected:
  // Owner: submit what was prepared since the last round.
  virtual void submit_pending() noexcept = 0;
  // Any processor: complete what is ready, if the CQ is free (R3). Returns the operations completed.
  virtual unsigned reap() noexcept = 0;
  // Any processor: whether reap() would find something, as cheaply as possible.
  virtual bool maybe_ready() const noexcept = 0;
  // The preemption watcher (R4): whether the owner's poll point would deliver a completion now, counting
  // what the kernel still holds for the owner's thread (uring U6). May make one non-blocking system call.
  virtual bool deliverable() const noexcept = 0;
  // How often another processor may help this one (0: at every poll point).
  virtual std::uint64_t help_interval_ns() const noexcept = 0;
  // Any processor, while helping (R2): make this poller's owner deliver what the kernel holds for it, if a
  // task has kept the owner from its poll point for long (uring U6).
  virtual void nudge_if_stalled(std::uint64_t) noexcept {}

  // When the owner last passed its poll point (U6 reads it to tell a long-running task).
  std::uint64_t last_poll_ns() const noexcept { return last_poll_ns_.load(std::memory_order_relaxed); }

  void ops_added() noexcept;             // owner, one new operation (R1)
  void ops_removed(unsigned n) noexcept; // any reaper, n operations finished (R1)

  Processor& proc_;
  std::atomic<std::uint32_t> ops_{0};  // operations in flight: owner adds, reapers remove
  std::uint64_t next_help_ = 0;        // driving thread: when it helps the others next
  std::atomic<std::uint64_t> last_poll_ns_{0};  // the driving thread writes at its poll point; helpers read
};

// Runs `op` on the caller's path (a task's processor backend, or a plain thread's blocking calls) with an
// absolute now_ns() deadline (UINT64_MAX: none); returns the result or -errno (-ETIMEDOUT: deadline).
long run_op(const OpSpec& op, std::uint64_t deadline_ns) noexcept;
// Parks (task) or blocks (thread) until `fd` is ready for `events` (POLLIN/POLLOUT); returns the events
// seen, -ETIMEDOUT or -errno. A task asks the poller of the processor it runs on at the time of the call.
long wait_fd(int fd, std::uint32_t events, std::uint64_t deadline_ns) noexcept;

// The backend of the running runtime (BackendKind::none before io_start).
BackendKind current_backend() noexcept;
// The poller of `p` (nullptr if the backend is unavailable).
inline IoPoller* poller_of(Processor* p) noexcept { return static_cast<IoPoller*>(p->io); }

IoPoller* make_uring_poller(Processor& p) noexcept;  // nullptr on failure
IoPoller* make_epoll_poller(Processor& p) noexcept;
// Whether io_uring with the operations the uring backend needs can be set up; `why` gets the reason if not.
bool probe_uring(const char** why) noexcept;

}  // namespace io_detail

// ---- hooks used by the core ----
// Runtime start, before the processors run: resolves Config::io_backend and creates every processor's
// poller (a fallback to epoll is announced once per process on stderr).
void io_start(RuntimeCore& rt);
// Throws ConfigError unless `name` is "auto", "uring" or "epoll".
void io_validate_backend(const std::string& name);
// True unless an I/O operation with a deadline is in flight (shutdown's quiescence test).
bool io_quiet(RuntimeCore& rt) noexcept;
// After the processors stopped: cancels every operation in flight, destroys the pollers, reports.
void io_shutdown(RuntimeCore& rt, ShutdownReport& report) noexcept;

}  // namespace skyloft
