// net_linux.cpp - the synthetic server as a plain Linux thread pool: the baseline, running the same request
// code (ServerOptions::serve) on kernel threads that the kernel schedules.
//
// TCP: an acceptor thread registers every connection in one shared epoll set with EPOLLONESHOT; each pool
// thread waits in that set for one ready connection, serves every complete request it has read (in order,
// on this thread), and re-arms it. So a long request holds its thread and its connection, not the others;
// the kernel time-slices the pool threads. UDP: every pool thread receives on the shared socket and serves
// the datagram itself.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "pool.hpp"
#include "servers.hpp"
#include "skyloft/io.hpp"
#include "spin.hpp"

namespace skyloft::synthetic {
namespace {

constexpr int kPollMs = 100;

struct PoolConnection {
  int fd;
  std::vector<std::uint8_t> in;
};

// Reads what is there and serves the complete requests; false when the connection is done.
bool serve_ready(PoolConnection& c, const RequestHandler& serve) {
  std::uint8_t buf[16384];
  for (;;) {
    const ssize_t r = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (r <= 0) return false;
    c.in.insert(c.in.end(), buf, buf + r);
    std::size_t off = 0;
    while (c.in.size() - off >= wire::kMessageSize) {
      wire::Request req;
      if (wire::decode_request(c.in.data() + off, c.in.size() - off, &req) != wire::Decode::ok) return false;
      off += wire::kMessageSize;
      std::uint8_t out[wire::kMessageSize];
      wire::encode_response(serve(req), out);
      // Blocking write of 32 bytes: the socket is blocking for writes (MSG_DONTWAIT only on reads).
      if (::send(c.fd, out, sizeof out, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof out)) return false;
    }
    c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(off));
  }
}

int serve_tcp(const ServerOptions& o, const io::SocketAddr& addr) {
  const int lfd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(lfd, addr.raw(), addr.size()) != 0 || ::listen(lfd, 1024) != 0) {
    fmt::print(stderr, "{}: listen on {}: {}\n", o.program, o.listen, std::strerror(errno));
    return 1;
  }
  const int n = pool_size(o);
  fmt::print("{}: linux thread pool ({} threads) serving tcp on {}\n", o.program, n, o.listen);
  std::fflush(stdout);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<std::thread> pool;
  for (int i = 0; i < n; ++i) {
    pool.emplace_back([&o, ep, i] {
      pool_pin(o, i);
      while (!g_stop.load(std::memory_order_relaxed)) {
        epoll_event ev;
        if (::epoll_wait(ep, &ev, 1, kPollMs) != 1) continue;
        auto* c = static_cast<PoolConnection*>(ev.data.ptr);
        if (!serve_ready(*c, o.serve)) {
          ::close(c->fd);  // also leaves the epoll set
          delete c;
          continue;
        }
        ev.events = EPOLLIN | EPOLLONESHOT;
        ::epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      }
    });
  }
  while (!g_stop.load(std::memory_order_relaxed)) {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, kPollMs) != 1) continue;
    const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new PoolConnection{fd, {}};
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.ptr = c;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  for (auto& t : pool) t.join();
  ::close(ep);
  ::close(lfd);
  return 0;
}

int serve_udp(const ServerOptions& o, const io::SocketAddr& addr) {
  const int fd = ::socket(addr.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int buf_size = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf_size, sizeof buf_size);
  if (::bind(fd, addr.raw(), addr.size()) != 0) {
    fmt::print(stderr, "{}: bind udp {}: {}\n", o.program, o.listen, std::strerror(errno));
    return 1;
  }
  timeval tv{0, kPollMs * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const int n = pool_size(o);
  fmt::print("{}: linux thread pool ({} threads) serving udp on {}\n", o.program, n, o.listen);
  std::fflush(stdout);
  std::vector<std::thread> pool;
  for (int i = 0; i < n; ++i) {
    pool.emplace_back([&o, fd, i] {
      pool_pin(o, i);
      std::uint8_t buf[2048];
      while (!g_stop.load(std::memory_order_relaxed)) {
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        const ssize_t r = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        wire::Request req;
        if (r != static_cast<ssize_t>(wire::kMessageSize) ||
            wire::decode_request(buf, wire::kMessageSize, &req) != wire::Decode::ok) {
          continue;
        }
        std::uint8_t out[wire::kMessageSize];
        wire::encode_response(o.serve(req), out);
        ::sendto(fd, out, sizeof out, 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    });
  }
  for (auto& t : pool) t.join();
  ::close(fd);
  return 0;
}

}  // namespace

int serve_linux(const ServerOptions& o) {
  const auto addr = io::SocketAddr::parse(o.listen).value();
  return o.udp ? serve_udp(o, addr) : serve_tcp(o, addr);
}

}  // namespace skyloft::synthetic
