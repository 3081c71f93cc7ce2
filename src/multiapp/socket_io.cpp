// socket_io.cpp - default socket path, connect, sendmsg with SCM_RIGHTS, deadline-bounded receive.
#include "multiapp/socket_io.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace skyloft::multiapp {
namespace {

std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

Received failure(ErrorCode code, std::string msg, bool closed = false) {
  Received r;
  r.message.error = ProtoError{code, std::move(msg)};
  r.closed = closed;
  return r;
}

}  // namespace

std::string default_socket_path() {
  if (geteuid() == 0) return "/run/skyloft/skyloftd.sock";
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg == nullptr || *xdg == '\0') {
    throw std::runtime_error("XDG_RUNTIME_DIR is not set, so there is no default socket path for a non-root user; "
                             "pass --socket PATH");
  }
  return std::string(xdg) + "/skyloft/skyloftd.sock";
}

int connect_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    errno = path.empty() ? ENOENT : ENAMETOOLONG;
    return -1;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

std::string send_message(int sock, const Message& m, std::span<const int> fds, bool nonblocking) {
  std::vector<std::uint8_t> bytes = encode(m);
  iovec iov{bytes.data(), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fmt::format("sendmsg: {}", std::strerror(errno));
  if (static_cast<std::size_t>(n) != bytes.size()) {
    return fmt::format("sendmsg: short write ({} of {} bytes; the peer is not reading)", n, bytes.size());
  }
  return {};
}

Received receive_message(int sock, int timeout_ms) {
  const std::int64_t deadline = now_ms() + timeout_ms;
  std::vector<std::uint8_t> buf(kHeaderSize);
  std::size_t have = 0, need = kHeaderSize;
  std::optional<Header> header;
  Received r;
  while (have < need) {
    std::int64_t left = deadline - now_ms();
    if (left <= 0) {
      return failure(ErrorCode::timeout, fmt::format("no whole reply within {} ms ({} of {} bytes)", timeout_ms, have, need));
    }
    pollfd p{sock, POLLIN, 0};
    int pr = poll(&p, 1, static_cast<int>(left));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return failure(ErrorCode::internal, fmt::format("poll: {}", std::strerror(errno)));
    if (pr == 0) continue;
    iovec iov{buf.data() + have, need - have};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxFds + 4))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return failure(ErrorCode::internal, fmt::format("recvmsg: {}", std::strerror(errno)));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        r.fds.emplace_back(fd);
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      return failure(ErrorCode::bad_count, "reply carried more file descriptors than any message may");
    }
    if (n == 0) {
      return failure(ErrorCode::truncated,
                     have == 0 ? "connection closed by skyloftd" : fmt::format("connection closed after {} of {} bytes", have, need),
                     true);
    }
    have += static_cast<std::size_t>(n);
    if (have == kHeaderSize && !header) {
      Parsed<Header> h = parse_header(buf);
      if (!h.ok()) return failure(h.error.code, h.error.message);
      header = h.value;
      need = kHeaderSize + header->length;
      buf.resize(need);
    }
  }
  r.message = parse_body(*header, std::span<const std::uint8_t>(buf).subspan(kHeaderSize));
  return r;
}

}  // namespace skyloft::multiapp
