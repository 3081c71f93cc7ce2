// client.cpp - the open-loop generator threads (client.hpp).
#include "client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "memcached_wire.hpp"
#include "realtime.hpp"
#include "skyloft/io.hpp"
#include "skyloft/time.hpp"
#include "synthetic_wire.hpp"

namespace skyloft::loadgen {
namespace {

namespace mc = wire::memcached;

// One request of a thread, indexed by its sequence number (the low bits of the synthetic id).
struct Slot {
  std::uint64_t intended_ns;
  std::uint64_t service_ns;  // 0: unknown (memcached)
  bool done;
};

struct Conn {
  int fd = -1;
  bool dead = false;
  bool want_out = false;
  std::string out;             // bytes not yet accepted by the kernel (TCP)
  std::string in;              // bytes received, not yet parsed
  std::deque<std::uint32_t> fifo;  // memcached: slots in request order
};

constexpr int kThreadShift = 40;  // synthetic id = thread << kThreadShift | slot

int open_socket(const Options& o, const io::SocketAddr& addr) {
  const bool tcp = o.transport == Transport::tcp;
  int fd = ::socket(addr.family(), (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
  if (::connect(fd, addr.raw(), addr.size()) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error(fmt::format("connect to {}: {}", o.server, std::strerror(e)));
  }
  if (tcp) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  } else {
    const int buf = 4 << 20;  // bursts of datagrams must not overflow the receive queue
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  }
  return fd;
}

class GeneratorThread {
 public:
  GeneratorThread(const Options& o, int index, int conns, double rate, std::uint64_t t0,
                  Progress& progress)
      : o_(o), index_(index), arrivals_(o.arrival, rate), rng_(o.seed * 1000003 + static_cast<std::uint64_t>(index)),
        progress_(progress) {
    const auto addr = io::SocketAddr::parse(o.server).value();
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    conns_.resize(static_cast<std::size_t>(conns));
    for (int i = 0; i < conns; ++i) {
      Conn& c = conns_[static_cast<std::size_t>(i)];
      c.fd = open_socket(o, addr);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<std::uint32_t>(i);
      ::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    }
    measure_from_ = t0 + o.warmup_ns;
    send_end_ = measure_from_ + o.duration_ns;
    arrivals_.start_at(t0);
    slots_.reserve(static_cast<std::size_t>(rate * static_cast<double>(send_end_ - t0) / 1e9 * 1.1) + 16);
    result_.has_service_time = o.protocol == Protocol::synthetic;
    value_.assign(o.memcached.value_size, 'v');
  }

  ~GeneratorThread() {
    for (auto& c : conns_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    if (ep_ >= 0) ::close(ep_);
  }

  void run() {
    ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // sleep to the next send time, not 50 us past it
    std::uint64_t next = arrivals_.next(rng_);
    const std::uint64_t drain_end = send_end_ + o_.drain_ns;
    epoll_event events[64];
    for (;;) {
      std::uint64_t now = skyloft::now_ns();
      while (next <= now && next < send_end_) {
        send_one(next);
        next = arrivals_.next(rng_);
      }
      now = skyloft::now_ns();
      const bool sending = next < send_end_;
      if (!sending && (outstanding_ == 0 || now >= drain_end)) break;
      const std::uint64_t wake = sending ? next : drain_end;
      timespec ts{0, 0};
      if (o_.wait == WaitMode::sleep && wake > now) {
        const std::uint64_t d = std::min<std::uint64_t>(wake - now, 10'000'000);
        ts.tv_sec = static_cast<time_t>(d / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(d % 1'000'000'000);
      }
      const int n = ::epoll_pwait2(ep_, events, 64, &ts, nullptr);
      for (int i = 0; i < n; ++i) {
        Conn& c = conns_[events[i].data.u32];
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
        if (!c.dead && (events[i].events & EPOLLOUT)) flush(c);
      }
    }
    finish(skyloft::now_ns());
  }

  PointResult& result() { return result_; }

 private:
  bool in_window(std::uint64_t t) const { return t >= measure_from_ && t < send_end_; }

  void send_one(std::uint64_t intended) {
    // Round robin over the live connections.
    Conn* c = nullptr;
    for (std::size_t tries = 0; tries < conns_.size(); ++tries) {
      Conn& k = conns_[rr_++ % conns_.size()];
      if (!k.dead) {
        c = &k;
        break;
      }
    }
    const auto seq = static_cast<std::uint32_t>(slots_.size());
    std::uint64_t service = 0;
    std::string msg;
    std::uint8_t bin[wire::kMessageSize];
    if (o_.protocol == Protocol::synthetic) {
      const Sample s = o_.request_mix().sample(rng_);
      service = s.service_ns;
      wire::encode_request({s.op, (static_cast<std::uint64_t>(index_) << kThreadShift) | seq, service, intended}, bin);
    } else {
      std::uniform_int_distribution<std::uint32_t> key(0, o_.memcached.keys - 1);
      std::uniform_real_distribution<double> u(0, 1);
      const std::string k = fmt::format("key:{}", key(rng_));
      if (u(rng_) < o_.memcached.get_ratio) mc::append_get(msg, k);
      else mc::append_set(msg, k, 0, value_);
    }
    slots_.push_back({intended, service, false});
    const std::uint64_t actual = skyloft::now_ns();
    if (in_window(intended)) {
      ++result_.sent;
      result_.send_lag_ns.record(actual > intended ? actual - intended : 0);
    }
    if (in_window(actual)) ++result_.sent_in_window;
    progress_.sent.fetch_add(1, std::memory_order_relaxed);
    if (c == nullptr) {  // every connection failed: the request is lost
      error();
      return;
    }
    ++outstanding_;
    if (o_.protocol == Protocol::synthetic) {
      if (o_.transport == Transport::udp) {
        if (::send(c->fd, bin, sizeof bin, MSG_DONTWAIT) != static_cast<ssize_t>(sizeof bin)) error();
        return;
      }
      c->out.append(reinterpret_cast<const char*>(bin), sizeof bin);
    } else {
      c->fifo.push_back(seq);
      c->out += msg;
    }
    if (!c->want_out) flush(*c);
  }

  // Writes what the kernel takes of c.out; waits for EPOLLOUT when it takes less.
  void flush(Conn& c) {
    while (!c.out.empty()) {
      const ssize_t w = ::send(c.fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w > 0) {
        c.out.erase(0, static_cast<std::size_t>(w));
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      kill(c);
      return;
    }
    const bool want = !c.out.empty();
    if (want != c.want_out) {
      c.want_out = want;
      epoll_event ev{};
      ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
      ev.data.u32 = static_cast<std::uint32_t>(&c - conns_.data());
      ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    }
  }

  void kill(Conn& c) {
    if (c.dead) return;
    c.dead = true;
    error();
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
  }

  void error() {
    ++result_.errors;
    progress_.errors.fetch_add(1, std::memory_order_relaxed);
  }

  void on_readable(Conn& c) {
    char buf[65536];
    for (;;) {
      const ssize_t r = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (r < 0 && o_.transport == Transport::udp && errno == ECONNREFUSED) {  // no server (yet): lost
        error();
        continue;
      }
      if (r <= 0) {  // closed or reset: its requests stay unanswered
        kill(c);
        return;
      }
      const std::uint64_t now = skyloft::now_ns();
      if (o_.transport == Transport::udp) {
        wire::Response resp;
        if (wire::decode_response(reinterpret_cast<const std::uint8_t*>(buf), static_cast<std::size_t>(r), &resp) ==
                wire::Decode::ok &&
            static_cast<std::size_t>(r) == wire::kMessageSize) {
          complete_synthetic(resp, now);
        } else {
          error();
        }
        continue;
      }
      c.in.append(buf, static_cast<std::size_t>(r));
      if (!parse(c, now)) {
        kill(c);
        return;
      }
    }
  }

  // Consumes the complete replies in c.in; false when the stream is malformed.
  bool parse(Conn& c, std::uint64_t now) {
    std::size_t off = 0;
    if (o_.protocol == Protocol::synthetic) {
      while (c.in.size() - off >= wire::kMessageSize) {
        wire::Response resp;
        if (wire::decode_response(reinterpret_cast<const std::uint8_t*>(c.in.data() + off), c.in.size() - off, &resp) !=
            wire::Decode::ok) {
          return false;
        }
        complete_synthetic(resp, now);
        off += wire::kMessageSize;
      }
    } else {
      for (;;) {
        std::size_t used = 0;
        const mc::Reply r = mc::parse_reply(std::string_view(c.in).substr(off), &used);
        if (r == mc::Reply::incomplete) break;
        if (r == mc::Reply::malformed || c.fifo.empty()) return false;
        const std::uint32_t seq = c.fifo.front();
        c.fifo.pop_front();
        if (r == mc::Reply::error) error();
        complete(seq, now);
        off += used;
      }
    }
    c.in.erase(0, off);
    return true;
  }

  void complete_synthetic(const wire::Response& resp, std::uint64_t now) {
    const std::uint64_t seq = resp.id & ((std::uint64_t{1} << kThreadShift) - 1);
    if ((resp.id >> kThreadShift) != static_cast<std::uint64_t>(index_) || seq >= slots_.size() ||
        slots_[seq].intended_ns != resp.send_ns || resp.status != wire::Status::ok) {
      error();
      return;
    }
    complete(static_cast<std::uint32_t>(seq), now);
  }

  void complete(std::uint32_t seq, std::uint64_t now) {
    Slot& s = slots_[seq];
    if (s.done) {  // a duplicate reply
      error();
      return;
    }
    s.done = true;
    --outstanding_;
    progress_.received.fetch_add(1, std::memory_order_relaxed);
    if (in_window(now)) ++result_.completed_in_window;
    if (!in_window(s.intended_ns)) return;
    ++result_.completed;
    record(s, now);
  }

  void record(const Slot& s, std::uint64_t now) {
    const std::uint64_t lat = now > s.intended_ns ? now - s.intended_ns : 0;
    result_.latency_ns.record(lat);
    if (s.service_ns > 0) result_.slowdown_milli.record(lat * 1000 / s.service_ns);
  }

  // Requests of the window still unanswered: counted, and recorded with their age (a lower bound).
  void finish(std::uint64_t now) {
    for (const Slot& s : slots_) {
      if (s.done || !in_window(s.intended_ns)) continue;
      ++result_.unanswered;
      record(s, now);
    }
  }

  const Options& o_;
  const int index_;
  ArrivalProcess arrivals_;
  std::mt19937_64 rng_;
  Progress& progress_;
  int ep_ = -1;
  std::vector<Conn> conns_;
  std::vector<Slot> slots_;
  std::size_t rr_ = 0;
  std::uint64_t outstanding_ = 0;
  std::uint64_t measure_from_ = 0, send_end_ = 0;
  std::string value_;
  PointResult result_;
};

}  // namespace

PointResult run_point(const Options& o, double rate_rps, Progress& progress) {
  const int threads = o.threads;
  // Set up every thread (connections) before the clock starts, 20 ms ahead so no thread starts late.
  std::vector<std::unique_ptr<GeneratorThread>> gens;
  const std::uint64_t t0 = skyloft::now_ns() + 20'000'000 + static_cast<std::uint64_t>(o.connections) * 50'000;
  for (int i = 0; i < threads; ++i) {
    const int conns = o.connections / threads + (i < o.connections % threads ? 1 : 0);
    gens.push_back(std::make_unique<GeneratorThread>(o, i, conns, rate_rps / threads, t0, progress));
  }
  std::vector<std::thread> ts;
  for (auto& g : gens) {
    ts.emplace_back([&g, &o, first = ts.empty()] {
      const std::string e = set_generator_slice(o.gen_slice_us);
      if (!e.empty() && first) fmt::print(stderr, "skyloft-loadgen: {}; default slice\n", e);
      g->run();
    });
  }
  for (auto& t : ts) t.join();
  PointResult r;
  r.target_rps = rate_rps;
  r.window_s = static_cast<double>(o.duration_ns) / 1e9;
  r.label = o.label;
  r.has_service_time = o.protocol == Protocol::synthetic;
  for (auto& g : gens) r.merge(g->result());
  return r;
}

void memcached_prefill(const Options& o) {
  const auto addr = io::SocketAddr::parse(o.server).value();
  Options tcp = o;
  tcp.transport = Transport::tcp;
  const int fd = open_socket(tcp, addr);
  const std::string value(o.memcached.value_size, 'v');
  std::string in;
  char buf[65536];
  constexpr std::uint32_t kBatch = 256;  // sets in flight: bounded, so neither side's buffers fill up
  for (std::uint32_t base = 0; base < o.memcached.keys; base += kBatch) {
    std::string out;
    const std::uint32_t n = std::min(kBatch, o.memcached.keys - base);
    for (std::uint32_t k = base; k < base + n; ++k) mc::append_set(out, fmt::format("key:{}", k), 0, value);
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
      ::close(fd);
      throw std::runtime_error("memcached prefill: send failed");
    }
    for (std::uint32_t got = 0; got < n;) {
      std::size_t used = 0;
      const mc::Reply r = mc::parse_reply(in, &used);
      if (r == mc::Reply::incomplete) {
        const ssize_t k = ::recv(fd, buf, sizeof buf, 0);
        if (k <= 0) {
          ::close(fd);
          throw std::runtime_error("memcached prefill: the server closed the connection");
        }
        in.append(buf, static_cast<std::size_t>(k));
        continue;
      }
      if (r != mc::Reply::stored) {
        ::close(fd);
        throw std::runtime_error(fmt::format("memcached prefill: reply '{}' to a set", mc::reply_name(r)));
      }
      in.erase(0, used);
      ++got;
    }
  }
  ::close(fd);
}

}  // namespace skyloft::loadgen
