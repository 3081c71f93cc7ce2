// poller.hpp (internal) - the per-processor I/O backend and its hooks into the core.
//
// One IoPoller per processor, created by the first I/O call of a task on it (a runtime that does no I/O
// creates no ring, no epoll set and prints nothing). It is the processor's PollSource (kPollIo: the poll
// point reaps completions while operations are in flight) and its ParkBackend (a parked processor sleeps
// where a completion, as well as ParkWord::unpark(), wakes it).
//
// Ownership: a poller is used only by the thread driving its processor (tasks inside a RuntimeSection,
// the poll point, the park backend's wait), except wake() (any thread), timed_in_flight() (shutdown) and
// the epoll backend's waiter list (own lock: a timed-out waiter leaves it from any processor). After the
// processor's kernel threads are joined, shutdown owns it (io_shutdown).
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
struct Completion {
  std::atomic<std::uint32_t> done{0};  // 0 -> 1 once, by the reaper (seq_cst), then wake_address(&done)
  std::int32_t res = 0;                // >= 0 result, or -errno; written before done
  bool timed = false;                  // has a deadline (counted in the poller's timed_in_flight)
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

 protected:
  void want_poll() noexcept { proc_.poll_bits.fetch_or(kPollIo, std::memory_order_relaxed); }
  void done_polling() noexcept { proc_.poll_bits.fetch_and(~kPollIo, std::memory_order_relaxed); }
  Processor& proc_;
};

// Runs `op` on the caller's path (a task's processor backend, or a plain thread's blocking calls) with an
// absolute now_ns() deadline (UINT64_MAX: none); returns the result or -errno (-ETIMEDOUT: deadline).
long run_op(const OpSpec& op, std::uint64_t deadline_ns) noexcept;
// Parks (task) or blocks (thread) until `fd` is ready for `events` (POLLIN/POLLOUT); returns the events
// seen, -ETIMEDOUT or -errno. A task asks the poller of the processor it runs on at the time of the call.
long wait_fd(int fd, std::uint32_t events, std::uint64_t deadline_ns) noexcept;

// The resolved backend for runtime `rt` (resolves Config::io_backend on the first call, logging a fallback).
BackendKind backend_for(RuntimeCore& rt) noexcept;
// The poller of `p`, created on first use (nullptr if the backend is unavailable). Driving thread only.
IoPoller* poller_of(Processor* p) noexcept;

IoPoller* make_uring_poller(Processor& p) noexcept;  // nullptr on failure
IoPoller* make_epoll_poller(Processor& p) noexcept;
// Whether io_uring with the operations the uring backend needs can be set up; `why` gets the reason if not.
bool probe_uring(const char** why) noexcept;

}  // namespace io_detail

// ---- hooks used by the core ----
// Throws ConfigError unless `name` is "auto", "uring" or "epoll".
void io_validate_backend(const std::string& name);
// True unless an I/O operation with a deadline is in flight (shutdown's quiescence test).
bool io_quiet(RuntimeCore& rt) noexcept;
// After the processors stopped: cancels every operation in flight, destroys the pollers, reports.
void io_shutdown(RuntimeCore& rt, ShutdownReport& report) noexcept;

}  // namespace skyloft
