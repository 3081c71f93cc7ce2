// blocking_io.cpp - read/write/recv/send/accept/connect/poll/select/epoll_wait that park the task, not the
// worker, when they would block on a pipe, socket, eventfd or terminal.
//
// The rule, for a call made by a task on a descriptor in blocking mode (O_NONBLOCK clear, no MSG_DONTWAIT):
//   1. ask the kernel whether the descriptor is ready (poll with a zero timeout);
//   2. not ready: park on the I/O poller until it is (io::wait_readable / wait_writable), then go to 1;
//   3. ready (or not pollable, or an error to report): make the real call inside a BlockingSection. It
//      should not block now, but another task may have taken the data meanwhile, or the descriptor is a
//      regular file (always "ready", yet a disk read takes time): the section lets a spare thread take the
//      core if the call does block.
// Plain threads, non-blocking descriptors and zero timeouts go straight to glibc: the runtime's own calls
// (the epoll backend's non-blocking attempts among them) pass here unchanged.
// A parked call is not interrupted by signals (no EINTR); poll with several descriptors waits on a
// temporary epoll set; select, and the variants that take a signal mask, block in a BlockingSection.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>

#include "posix/real.hpp"
#include "posix/timespec.hpp"
#include "skyloft/blocking.hpp"
#include "skyloft/io.hpp"
#include "skyloft/task.hpp"

namespace skyloft::posix {
namespace {

int real_poll(pollfd* fds, nfds_t n, int timeout) { return SKY_REAL(poll, "GLIBC_2.2.5")(fds, n, timeout); }

// Whether a call on `fd` may park: made by a task, on a descriptor in blocking mode.
bool may_park(int fd) noexcept {
  if (!this_task::in_task()) return false;
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK) == 0;
}

// Steps 1-3 of the rule for one descriptor and `events` (POLLIN or POLLOUT).
template <class Call>
auto when_ready(int fd, short events, Call call) {
  for (;;) {
    pollfd p{fd, events, 0};
    if (real_poll(&p, 1, 0) != 0) break;
    io::Status s = events == POLLIN ? io::wait_readable(fd) : io::wait_writable(fd);
    if (s) break;  // the poller cannot wait on it: let the real call block (marked)
  }
  BlockingSection blocking;
  return call();
}

Deadline deadline_of_ms(int timeout_ms) noexcept {
  return timeout_ms < 0 ? kNoDeadline : deadline_after(std::chrono::milliseconds(timeout_ms));
}

// What is left until `deadline`, as poll(2)'s timeout.
int ms_until(Deadline deadline) noexcept {
  if (deadline == kNoDeadline) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
  return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : static_cast<int>(left);
}

// poll(2) with a timeout, in a task: park on the one descriptor, or on an epoll set holding them all.
int poll_parked(pollfd* fds, nfds_t n, Deadline deadline) {
  if (n == 0) {
    this_task::sleep_until(deadline);
    return 0;
  }
  int waiter = fds[0].fd;
  int epfd = -1;
  if (n > 1) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    for (nfds_t i = 0; epfd >= 0 && i < n; ++i) {
      if (fds[i].fd < 0) continue;
      epoll_event ev{};
      ev.events = static_cast<std::uint32_t>(fds[i].events & (POLLIN | POLLOUT | POLLPRI | POLLRDHUP));
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i].fd, &ev) != 0) {  // a repeated or unpollable descriptor
        close(epfd);
        epfd = -1;
      }
    }
    if (epfd < 0) {
      BlockingSection blocking;
      return real_poll(fds, n, ms_until(deadline));
    }
    waiter = epfd;
  }
  int r = 0;
  for (;;) {
    r = real_poll(fds, n, 0);
    if (r != 0) break;
    short events = n > 1 ? POLLIN : fds[0].events;
    io::Status s = (events & POLLIN) || n > 1 ? io::wait_readable(waiter, deadline) : io::wait_writable(waiter, deadline);
    if (s == std::errc::timed_out) break;
    if (s) {  // the poller cannot wait on it
      BlockingSection blocking;
      r = real_poll(fds, n, ms_until(deadline));
      break;
    }
  }
  if (epfd >= 0) close(epfd);
  return r;
}

}  // namespace
}  // namespace skyloft::posix

using namespace skyloft;
using namespace skyloft::posix;

extern "C" {

ssize_t read(int fd, void* buf, size_t len) {
  if (!may_park(fd)) return SKY_REAL(read, "GLIBC_2.2.5")(fd, buf, len);
  return when_ready(fd, POLLIN, [&] { return SKY_REAL(read, "GLIBC_2.2.5")(fd, buf, len); });
}

ssize_t __read_chk(int fd, void* buf, size_t len, size_t buflen) {
  if (len > buflen) return SKY_REAL(__read_chk, "GLIBC_2.4")(fd, buf, len, buflen);  // glibc reports the overflow
  return read(fd, buf, len);
}

ssize_t write(int fd, const void* buf, size_t len) {
  if (!may_park(fd)) return SKY_REAL(write, "GLIBC_2.2.5")(fd, buf, len);
  return when_ready(fd, POLLOUT, [&] { return SKY_REAL(write, "GLIBC_2.2.5")(fd, buf, len); });
}

ssize_t readv(int fd, const iovec* iov, int n) {
  if (!may_park(fd)) return SKY_REAL(readv, "GLIBC_2.2.5")(fd, iov, n);
  return when_ready(fd, POLLIN, [&] { return SKY_REAL(readv, "GLIBC_2.2.5")(fd, iov, n); });
}

ssize_t writev(int fd, const iovec* iov, int n) {
  if (!may_park(fd)) return SKY_REAL(writev, "GLIBC_2.2.5")(fd, iov, n);
  return when_ready(fd, POLLOUT, [&] { return SKY_REAL(writev, "GLIBC_2.2.5")(fd, iov, n); });
}

ssize_t recv(int fd, void* buf, size_t len, int flags) {
  if ((flags & MSG_DONTWAIT) || !may_park(fd)) return SKY_REAL(recv, "GLIBC_2.2.5")(fd, buf, len, flags);
  return when_ready(fd, POLLIN, [&] { return SKY_REAL(recv, "GLIBC_2.2.5")(fd, buf, len, flags); });
}

ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags) {
  if (len > buflen) return SKY_REAL(__recv_chk, "GLIBC_2.4")(fd, buf, len, buflen, flags);
  return recv(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen) {
  if ((flags & MSG_DONTWAIT) || !may_park(fd)) {
    return SKY_REAL(recvfrom, "GLIBC_2.2.5")(fd, buf, len, flags, from, fromlen);
  }
  return when_ready(fd, POLLIN, [&] { return SKY_REAL(recvfrom, "GLIBC_2.2.5")(fd, buf, len, flags, from, fromlen); });
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  if ((flags & MSG_DONTWAIT) || !may_park(fd)) return SKY_REAL(recvmsg, "GLIBC_2.2.5")(fd, msg, flags);
  return when_ready(fd, POLLIN, [&] { return SKY_REAL(recvmsg, "GLIBC_2.2.5")(fd, msg, flags); });
}

ssize_t send(int fd, const void* buf, size_t len, int flags) {
  if ((flags & MSG_DONTWAIT) || !may_park(fd)) return SKY_REAL(send, "GLIBC_2.2.5")(fd, buf, len, flags);
  return when_ready(fd, POLLOUT, [&] { return SKY_REAL(send, "GLIBC_2.2.5")(fd, buf, len, flags); });
}

ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) {
  if ((flags & MSG_DONTWAIT) || !may_park(fd)) return SKY_REAL(sendto, "GLIBC_2.2.5")(fd, buf, len, flags, to, tolen);
  return when_ready(fd, POLLOUT, [&] { return SKY_REAL(sendto, "GLIBC_2.2.5")(fd, buf, len, flags, to, tolen); });
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  if ((flags & MSG_DONTWAIT) || !may_park(fd)) return SKY_REAL(sendmsg, "GLIBC_2.2.5")(fd, msg, flags);
  return when_ready(fd, POLLOUT, [&] { return SKY_REAL(sendmsg, "GLIBC_2.2.5")(fd, msg, flags); });
}

int accept(int fd, sockaddr* addr, socklen_t* len) {
  if (!may_park(fd)) return SKY_REAL(accept, "GLIBC_2.2.5")(fd, addr, len);
  return when_ready(fd, POLLIN, [&] { return SKY_REAL(accept, "GLIBC_2.2.5")(fd, addr, len); });
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  if (!may_park(fd)) return SKY_REAL(accept4, "GLIBC_2.10")(fd, addr, len, flags);
  return when_ready(fd, POLLIN, [&] { return SKY_REAL(accept4, "GLIBC_2.10")(fd, addr, len, flags); });
}

int connect(int fd, const sockaddr* addr, socklen_t len) {
  if (!may_park(fd)) return SKY_REAL(connect, "GLIBC_2.2.5")(fd, addr, len);
  BlockingSection blocking;  // a blocking connect cannot be split without changing the descriptor's mode
  return SKY_REAL(connect, "GLIBC_2.2.5")(fd, addr, len);
}

int poll(pollfd* fds, nfds_t n, int timeout) {
  if (timeout == 0 || !this_task::in_task()) return real_poll(fds, n, timeout);
  return poll_parked(fds, n, deadline_of_ms(timeout));
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  if (fdslen / sizeof(pollfd) < n) return SKY_REAL(__poll_chk, "GLIBC_2.16")(fds, n, timeout, fdslen);
  return poll(fds, n, timeout);
}

int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  bool zero = timeout != nullptr && timeout->tv_sec == 0 && timeout->tv_nsec == 0;
  if (zero || !this_task::in_task()) return SKY_REAL(ppoll, "GLIBC_2.2.5")(fds, n, timeout, mask);
  if (mask != nullptr || (timeout != nullptr && !timespec_valid(timeout))) {
    BlockingSection blocking;
    return SKY_REAL(ppoll, "GLIBC_2.2.5")(fds, n, timeout, mask);
  }
  return poll_parked(fds, n, timeout ? deadline_after(to_duration(*timeout)) : kNoDeadline);
}

int select(int n, fd_set* r, fd_set* w, fd_set* e, timeval* timeout) {
  bool zero = timeout != nullptr && timeout->tv_sec == 0 && timeout->tv_usec == 0;
  if (zero || !this_task::in_task()) return SKY_REAL(select, "GLIBC_2.2.5")(n, r, w, e, timeout);
  BlockingSection blocking;
  return SKY_REAL(select, "GLIBC_2.2.5")(n, r, w, e, timeout);
}

int epoll_wait(int epfd, epoll_event* events, int max, int timeout) {
  if (timeout == 0 || !this_task::in_task()) return SKY_REAL(epoll_wait, "GLIBC_2.3.2")(epfd, events, max, timeout);
  Deadline deadline = deadline_of_ms(timeout);
  for (;;) {
    int got = SKY_REAL(epoll_wait, "GLIBC_2.3.2")(epfd, events, max, 0);
    if (got != 0) return got;
    io::Status s = io::wait_readable(epfd, deadline);  // an epoll set is readable when an event is pending
    if (s == std::errc::timed_out) return 0;
    if (s) {
      BlockingSection blocking;
      return SKY_REAL(epoll_wait, "GLIBC_2.3.2")(epfd, events, max, timeout);
    }
  }
}

int epoll_pwait(int epfd, epoll_event* events, int max, int timeout, const sigset_t* mask) {
  if (mask == nullptr) return epoll_wait(epfd, events, max, timeout);
  if (timeout == 0 || !this_task::in_task()) {
    return SKY_REAL(epoll_pwait, "GLIBC_2.6")(epfd, events, max, timeout, mask);
  }
  BlockingSection blocking;
  return SKY_REAL(epoll_pwait, "GLIBC_2.6")(epfd, events, max, timeout, mask);
}

}  // extern "C"
