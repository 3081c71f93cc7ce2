// net_linux.cpp - the memcached server as a plain Linux thread pool: the baseline, serving the same
// Sessions on kernel threads that the kernel schedules (one per core by default, like memcached -t).
//
// An acceptor thread registers every connection in one shared epoll set with EPOLLONESHOT, so at most one
// pool thread owns a connection (and its Session) at a time: it reads what is there, serves the complete
// requests, writes the replies (blocking writes: replies are short, or one big value) and re-arms it.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include <fmt/core.h>

#include "bench_common.hpp"
#include "server.hpp"
#include "session.hpp"
#include "skyloft/io.hpp"

namespace skyloft::memcached {
namespace {

constexpr int kPollMs = 100;

struct PoolConnection {
  PoolConnection(int f, ServerState& st) : fd(f), session(st) {}
  int fd;
  Session session;
};

bool send_all(int fd, const std::string& out) {
  std::size_t off = 0;
  while (off < out.size()) {
    const ssize_t w = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    off += static_cast<std::size_t>(w);
  }
  return true;
}

// Reads what is there and serves it; false when the connection is done.
bool serve_ready(PoolConnection& c) {
  for (;;) {
    const auto space = c.session.read_space();
    const ssize_t r = ::recv(c.fd, space.data(), space.size(), MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (r <= 0) return false;
    const After after = c.session.received(static_cast<std::size_t>(r));
    const bool sent = c.session.output().empty() || send_all(c.fd, c.session.output());
    c.session.clear_output();
    if (!sent || after == After::close) return false;
  }
}

// Gives a served connection back to the epoll set; the next pool thread woken for it owns it. The kernel
// orders this thread's work before that thread's, but ThreadSanitizer sees the order only through an
// EPOLL_CTL_ADD (its epoll_ctl releases the epoll descriptor on ADD, its epoll_wait acquires it), so under
// TSan the re-arm is a DEL and an ADD; everywhere else one MOD.
void rearm(int ep, int fd, epoll_event* ev) {
#if defined(__SANITIZE_THREAD__)
  ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
  ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, ev);
#else
  ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, ev);
#endif
}

int pool_size(const ServerOptions& o) {
  if (o.threads > 0) return o.threads;
  const auto cores = o.cores_text.empty() ? skyloft::allowed_cores() : skyloft::parse_core_list(o.cores_text);
  return std::max<int>(1, static_cast<int>(cores.size()));
}

}  // namespace

int serve_linux(const ServerOptions& o, ServerState& state, const std::atomic<bool>& stop, const OnListening& ready) {
  auto addr = io::SocketAddr::parse(fmt::format("{}:{}", o.host, o.port));
  if (!addr) {
    fmt::print(stderr, "skyloft-memcached: --listen {}: not an IPv4 address\n", o.host);
    return 2;
  }
  const int lfd = ::socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(lfd, addr->raw(), addr->size()) != 0 || ::listen(lfd, 1024) != 0) {
    fmt::print(stderr, "skyloft-memcached: listen on {}: {}\n", addr->to_string(), std::strerror(errno));
    ::close(lfd);
    return 1;
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&bound), &len);
  const std::uint16_t port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  state.settings.port = port;
  const int n = pool_size(o);
  state.settings.threads = n;
  const std::vector<int> pin = o.cores_text.empty() ? std::vector<int>{} : skyloft::parse_core_list(o.cores_text);
  fmt::print("skyloft-memcached: linux thread pool ({} threads) serving tcp on {}:{}\n", n, o.host, port);
  std::fflush(stdout);
  if (ready) ready(port);

  std::mutex conns_lock;
  std::unordered_set<PoolConnection*> conns;  // protected by conns_lock: what is left to free at the end
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<std::thread> pool;
  for (int i = 0; i < n; ++i) {
    pool.emplace_back([&, i] {
      if (!pin.empty()) bench::pin_self(pin[static_cast<std::size_t>(i) % pin.size()]);
      while (!stop.load(std::memory_order_relaxed)) {
        epoll_event ev;
        if (::epoll_wait(ep, &ev, 1, kPollMs) != 1) continue;
        auto* c = static_cast<PoolConnection*>(ev.data.ptr);
        if (!serve_ready(*c)) {
          {
            std::lock_guard g(conns_lock);
            conns.erase(c);
          }
          ::close(c->fd);  // also leaves the epoll set
          delete c;
          continue;
        }
        ev.events = EPOLLIN | EPOLLONESHOT;
        rearm(ep, c->fd, &ev);
      }
    });
  }
  while (!stop.load(std::memory_order_relaxed)) {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, kPollMs) != 1) continue;
    const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) ::usleep(1000);
      continue;
    }
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new PoolConnection(fd, state);
    {
      std::lock_guard g(conns_lock);
      conns.insert(c);
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.ptr = c;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  for (auto& t : pool) t.join();
  for (PoolConnection* c : conns) {
    ::close(c->fd);
    delete c;
  }
  ::close(ep);
  ::close(lfd);
  return 0;
}

}  // namespace skyloft::memcached
