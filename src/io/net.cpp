// net.cpp - the public socket types (io.hpp): addresses, descriptors, TCP and UDP, fd readiness. Each call
// builds an OpSpec and runs it through run_op (ops.cpp); errors come back as error codes, never throws.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

#include "core/scheduler.hpp"
#include "io/poller.hpp"
#include "skyloft/io.hpp"

namespace skyloft::io {

using io_detail::Op;
using io_detail::OpSpec;

namespace {

std::error_code sys_error(int err) noexcept { return {err, std::system_category()}; }
// The error of the call that just failed (preemptible code: task_errno(), scheduler.hpp).
std::error_code last_error() noexcept { return sys_error(task_errno()); }

std::uint64_t to_ns(Deadline d) noexcept {
  if (d == kNoDeadline) return UINT64_MAX;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count();
  return ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
}

constexpr int kSockFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;

Result<Fd> new_socket(int family, int type) {
  const int fd = ::socket(family, type | kSockFlags, 0);
  if (fd < 0) return Result<Fd>(last_error());
  return Fd(fd);
}

Result<SocketAddr> sock_name(int fd, bool peer) {
  SocketAddr a;
  socklen_t len = sizeof(sockaddr_storage);
  const int r = peer ? getpeername(fd, a.raw(), &len) : getsockname(fd, a.raw(), &len);
  if (r != 0) return Result<SocketAddr>(last_error());
  a.set_size(len);
  return a;
}

// A transfer of up to `len` bytes: value() is the count; a negative result is the error.
Result<std::size_t> transfer(const OpSpec& op, Deadline deadline) {
  const long r = io_detail::run_op(op, to_ns(deadline));
  if (r < 0) return Result<std::size_t>(sys_error(static_cast<int>(-r)));
  return static_cast<std::size_t>(r);
}

}  // namespace

// ---- errors ----

const std::error_category& io_category() noexcept {
  struct Category final : std::error_category {
    const char* name() const noexcept override { return "skyloft.io"; }
    std::string message(int e) const override {
      return e == static_cast<int>(Error::eof) ? "end of stream before the requested bytes" : "unknown I/O error";
    }
  };
  static const Category category;
  return category;
}

// ---- SocketAddr ----

SocketAddr::SocketAddr() noexcept : storage_{}, len_(0) {}

Result<SocketAddr> SocketAddr::parse(std::string_view text) {
  const auto bad = Result<SocketAddr>(std::make_error_code(std::errc::invalid_argument));
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return bad;
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad;
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5) return bad;
  unsigned port = 0;
  for (char ch : port_text) {
    if (ch < '0' || ch > '9') return bad;
    port = port * 10 + static_cast<unsigned>(ch - '0');
  }
  if (port > 65535) return bad;
  SocketAddr a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(a.raw());
  auto* v6 = reinterpret_cast<sockaddr_in6*>(a.raw());
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    a.len_ = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    a.len_ = sizeof(sockaddr_in6);
  } else {
    return bad;
  }
  return a;
}

SocketAddr SocketAddr::ipv4(std::uint32_t host_order_addr, std::uint16_t port) noexcept {
  SocketAddr a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(a.raw());
  v4->sin_family = AF_INET;
  v4->sin_port = htons(port);
  v4->sin_addr.s_addr = htonl(host_order_addr);
  a.len_ = sizeof(sockaddr_in);
  return a;
}

SocketAddr SocketAddr::loopback(std::uint16_t port) noexcept { return ipv4(INADDR_LOOPBACK, port); }

int SocketAddr::family() const noexcept { return storage_.ss_family; }

std::uint16_t SocketAddr::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(raw())->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(raw())->sin6_port);
  return 0;
}

std::string SocketAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(raw())->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(raw())->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port());
  }
  return "(no address)";
}

// ---- Fd ----

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

Status Fd::close() noexcept {
  if (fd_ < 0) return {};
  if (::close(std::exchange(fd_, -1)) == 0) return {};
  const int err = task_errno();
  return err == EINTR ? Status{} : sys_error(err);
}

// ---- TcpStream ----

Result<TcpStream> TcpStream::connect(const SocketAddr& addr, Deadline deadline) {
  Result<Fd> s = new_socket(addr.family(), SOCK_STREAM);
  if (!s) return Result<TcpStream>(s.error());
  OpSpec op{Op::connect, s->get()};
  op.addr = addr.raw();
  op.addrlen = addr.size();
  const long r = io_detail::run_op(op, to_ns(deadline));
  if (r < 0) return Result<TcpStream>(sys_error(static_cast<int>(-r)));
  return TcpStream(std::move(s.value()));
}

Result<std::size_t> TcpStream::read(void* buf, std::size_t len, Deadline deadline) {
  if (len == 0) return std::size_t{0};
  OpSpec op{Op::recv, fd_.get()};
  op.buf = buf;
  op.len = len;
  return transfer(op, deadline);
}

Result<std::size_t> TcpStream::write(const void* buf, std::size_t len, Deadline deadline) {
  if (len == 0) return std::size_t{0};
  OpSpec op{Op::send, fd_.get()};
  op.buf = const_cast<void*>(buf);
  op.len = len;
  op.flags = MSG_NOSIGNAL;
  return transfer(op, deadline);
}

Result<std::size_t> TcpStream::read_exact(void* buf, std::size_t len, Deadline deadline) {
  std::size_t got = 0;
  while (got < len) {
    Result<std::size_t> r = read(static_cast<char*>(buf) + got, len - got, deadline);
    if (!r) return Result<std::size_t>(r.error(), got);
    if (r.value() == 0) return Result<std::size_t>(make_error_code(Error::eof), got);
    got += r.value();
  }
  return got;
}

Result<std::size_t> TcpStream::write_all(const void* buf, std::size_t len, Deadline deadline) {
  std::size_t put = 0;
  while (put < len) {
    Result<std::size_t> r = write(static_cast<const char*>(buf) + put, len - put, deadline);
    if (!r) return Result<std::size_t>(r.error(), put);
    put += r.value();
  }
  return put;
}

Status TcpStream::shutdown(int how) noexcept {
  return ::shutdown(fd_.get(), how) == 0 ? Status{} : last_error();
}

Status TcpStream::set_nodelay(bool on) noexcept {
  const int v = on ? 1 : 0;
  return setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) == 0 ? Status{} : last_error();
}

Result<SocketAddr> TcpStream::peer_addr() const { return sock_name(fd_.get(), true); }

// ---- TcpListener ----

Result<TcpListener> TcpListener::bind(const SocketAddr& addr, int backlog) {
  Result<Fd> s = new_socket(addr.family(), SOCK_STREAM);
  if (!s) return Result<TcpListener>(s.error());
  const int one = 1;
  setsockopt(s->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s->get(), addr.raw(), addr.size()) != 0) return Result<TcpListener>(last_error());
  if (::listen(s->get(), backlog) != 0) return Result<TcpListener>(last_error());
  return TcpListener(std::move(s.value()));
}

Result<TcpStream> TcpListener::accept(Deadline deadline, SocketAddr* peer) {
  SocketAddr a;
  socklen_t len = sizeof(sockaddr_storage);
  OpSpec op{Op::accept, fd_.get()};
  op.out_addr = a.raw();
  op.out_len = &len;
  op.flags = kSockFlags;
  const long r = io_detail::run_op(op, to_ns(deadline));
  if (r < 0) return Result<TcpStream>(sys_error(static_cast<int>(-r)));
  if (peer != nullptr) {
    a.set_size(len);
    *peer = a;
  }
  return TcpStream(Fd(static_cast<int>(r)));
}

Result<SocketAddr> TcpListener::local_addr() const { return sock_name(fd_.get(), false); }

// ---- UdpSocket ----

Result<UdpSocket> UdpSocket::bind(const SocketAddr& addr) {
  Result<Fd> s = new_socket(addr.family(), SOCK_DGRAM);
  if (!s) return Result<UdpSocket>(s.error());
  if (::bind(s->get(), addr.raw(), addr.size()) != 0) return Result<UdpSocket>(last_error());
  return UdpSocket(std::move(s.value()));
}

Result<std::size_t> UdpSocket::send_to(const void* buf, std::size_t len, const SocketAddr& to, Deadline deadline) {
  iovec iov{const_cast<void*>(buf), len};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(to.raw());
  msg.msg_namelen = to.size();
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  OpSpec op{Op::sendmsg, fd_.get()};
  op.msg = &msg;
  op.flags = MSG_NOSIGNAL;
  return transfer(op, deadline);
}

Result<std::size_t> UdpSocket::recv_from(void* buf, std::size_t len, SocketAddr* from, Deadline deadline) {
  SocketAddr a;
  iovec iov{buf, len};
  msghdr msg{};
  msg.msg_name = a.raw();
  msg.msg_namelen = sizeof(sockaddr_storage);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  OpSpec op{Op::recvmsg, fd_.get()};
  op.msg = &msg;
  Result<std::size_t> r = transfer(op, deadline);
  if (r && from != nullptr) {
    a.set_size(msg.msg_namelen);
    *from = a;
  }
  return r;
}

Result<SocketAddr> UdpSocket::local_addr() const { return sock_name(fd_.get(), false); }

// ---- readiness ----

namespace {
Status wait_for(int fd, std::uint32_t events, Deadline deadline) {
  const long r = io_detail::wait_fd(fd, events, to_ns(deadline));
  if (r < 0) return sys_error(static_cast<int>(-r));
  if ((r & POLLNVAL) != 0) return sys_error(EBADF);
  return {};
}
}  // namespace

Status wait_readable(int fd, Deadline deadline) { return wait_for(fd, POLLIN, deadline); }
Status wait_writable(int fd, Deadline deadline) { return wait_for(fd, POLLOUT, deadline); }

// ---- File ----

Result<File> File::open(const std::string& path, int flags, mode_t mode) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return Result<File>(last_error());
  return File(Fd(fd));
}

Result<std::size_t> File::read_at(void* buf, std::size_t len, std::uint64_t offset, Deadline deadline) {
  OpSpec op{Op::read, fd_.get()};
  op.buf = buf;
  op.len = len;
  op.offset = offset;
  return transfer(op, deadline);
}

Result<std::size_t> File::write_at(const void* buf, std::size_t len, std::uint64_t offset, Deadline deadline) {
  OpSpec op{Op::write, fd_.get()};
  op.buf = const_cast<void*>(buf);
  op.len = len;
  op.offset = offset;
  return transfer(op, deadline);
}

Status File::fsync(Deadline deadline) {
  OpSpec op{Op::fsync, fd_.get()};
  const long r = io_detail::run_op(op, to_ns(deadline));
  return r < 0 ? sys_error(static_cast<int>(-r)) : Status{};
}

}  // namespace skyloft::io
