// ops.cpp - the public I/O calls (io.hpp): each one becomes an OpSpec and runs on one of three paths:
//   task + uring   the processor's ring (submit_and_await: the kernel does the whole operation); a send is
//                  tried first without blocking, and goes to the ring only when the socket is full;
//   task + epoll   readiness: the non-blocking call, and on EAGAIN the processor's epoll set (wait_ready);
//                  regular-file calls run directly inside a BlockingSection (a long one hands the core off);
//   plain thread   the same readiness loop with poll(2): the thread blocks, as documented.
// Every descriptor is created non-blocking, which io_uring ignores for sockets (it arms its own poll) and
// the readiness paths need. Sends use MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE. errno is read
// through task_errno() (scheduler.hpp): these paths are preemptible.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "core/scheduler.hpp"
#include "io/poller.hpp"
#include "skyloft/blocking.hpp"
#include "skyloft/io.hpp"

namespace skyloft::io_detail {
namespace {

// One attempt that does not block; -EAGAIN when the fd is not ready. connect is handled by the caller.
long try_now(const OpSpec& op) noexcept {
  long r = -1;
  switch (op.op) {
    case Op::accept: r = accept4(op.fd, op.out_addr, op.out_len, op.flags); break;
    case Op::recv: r = recv(op.fd, op.buf, op.len, op.flags | MSG_DONTWAIT); break;
    case Op::send: r = send(op.fd, op.buf, op.len, op.flags | MSG_DONTWAIT); break;
    case Op::recvmsg: r = recvmsg(op.fd, op.msg, op.flags | MSG_DONTWAIT); break;
    case Op::sendmsg: r = sendmsg(op.fd, op.msg, op.flags | MSG_DONTWAIT); break;
    case Op::read: r = pread(op.fd, op.buf, op.len, static_cast<off_t>(op.offset)); break;
    case Op::write: r = pwrite(op.fd, op.buf, op.len, static_cast<off_t>(op.offset)); break;
    case Op::fsync: r = ::fsync(op.fd); break;
    case Op::poll: {
      pollfd pfd{op.fd, static_cast<short>(op.poll_mask), 0};
      r = ::poll(&pfd, 1, 0);
      if (r == 0) return -EAGAIN;
      if (r > 0) r = pfd.revents;
      break;
    }
    case Op::connect: return -EINVAL;
  }
  if (r < 0) {
    const int err = task_errno();
    return err == EWOULDBLOCK ? -EAGAIN : -err;
  }
  return r;
}

std::uint32_t readiness_of(Op op, std::uint32_t poll_mask) noexcept {
  switch (op) {
    case Op::send:
    case Op::sendmsg:
    case Op::connect: return POLLOUT;
    case Op::poll: return poll_mask;
    default: return POLLIN;
  }
}

}  // namespace

long wait_fd(int fd, std::uint32_t events, std::uint64_t deadline_ns) noexcept {
  if (Task* task = current_task()) {
    RuntimeSection section;
    IoPoller* poller = poller_of(proc_in_section(task));
    if (poller == nullptr) return -ENOSYS;
    if (poller->kind() == BackendKind::uring) {
      OpSpec op{Op::poll, fd};
      op.poll_mask = events;
      return poller->submit_and_await(op, deadline_ns);
    }
    return poller->wait_ready(fd, events, deadline_ns);
  }
  for (;;) {
    int timeout_ms = -1;
    if (deadline_ns != UINT64_MAX) {
      const std::uint64_t now = now_ns();
      if (now >= deadline_ns) return -ETIMEDOUT;
      timeout_ms = static_cast<int>(std::min<std::uint64_t>((deadline_ns - now + 999'999) / 1'000'000, INT32_MAX));
    }
    pollfd pfd{fd, static_cast<short>(events), 0};
    const int r = ::poll(&pfd, 1, timeout_ms);
    if (r > 0) return pfd.revents;
    if (r < 0 && errno != EINTR) return -errno;
  }
}

namespace {

bool is_file_op(Op op) noexcept { return op == Op::read || op == Op::write || op == Op::fsync; }
bool is_send(Op op) noexcept { return op == Op::send || op == Op::sendmsg; }

// The readiness path (epoll backend in a task, or a plain thread).
long run_readiness(const OpSpec& op, std::uint64_t deadline_ns) noexcept {
  if (is_file_op(op.op)) {
    BlockingSection blocking;  // regular files are never "not ready": the call may take a while
    return try_now(op);
  }
  if (op.op == Op::connect) {
    if (::connect(op.fd, op.addr, op.addrlen) == 0) return 0;
    if (const int err = task_errno(); err != EINPROGRESS) return -err;
    const long w = wait_fd(op.fd, POLLOUT, deadline_ns);
    if (w < 0) return w;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -task_errno();
    return -err;
  }
  if (op.op == Op::poll) return wait_fd(op.fd, op.poll_mask, deadline_ns);
  for (;;) {
    const long r = try_now(op);
    if (r != -EAGAIN) return r;
    const long w = wait_fd(op.fd, readiness_of(op.op, op.poll_mask), deadline_ns);
    if (w < 0) return w;
  }
}

}  // namespace

long run_op(const OpSpec& op, std::uint64_t deadline_ns) noexcept {
  if (Task* task = current_task()) {
    RuntimeSection section;
    IoPoller* poller = poller_of(proc_in_section(task));
    if (poller == nullptr) return -ENOSYS;
    if (poller->kind() == BackendKind::uring) {
      if (is_send(op.op)) {
        // Send first: a socket with room takes the bytes at once, so the task keeps its processor (no
        // park, no poll-point round, no ring round trip); only a full socket is left to the ring.
        const long r = try_now(op);
        if (r != -EAGAIN) return r;
      }
      const long r = poller->submit_and_await(op, deadline_ns);
      if (r != -EAGAIN || op.op == Op::poll) return r;
      // A descriptor io_uring would not wait on (a user's O_NONBLOCK pipe): fall through to readiness.
    }
  }
  return run_readiness(op, deadline_ns);
}

}  // namespace skyloft::io_detail
