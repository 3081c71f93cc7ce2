// net_skyloft.cpp - the synthetic server on skyloft: task-aware sockets (io.hpp), one task per connection
// and, with --task-per request, one task per request.
//
// TCP: an acceptor task spawns a task per connection, which reads requests. With --task-per connection it
// serves them itself, in order; with --task-per request it spawns a task per request, which runs the
// request code (ServerOptions::serve) and writes its response under the connection's write lock (responses may then leave out of order). UDP: one
// receiving task spawns a task per datagram, which serves it and sends the response to the sender.
// Blocking calls carry 100 ms deadlines so that every task sees g_stop soon.
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>

#include <fmt/core.h>

#include "servers.hpp"
#include "skyloft/io.hpp"
#include "skyloft/skyloft.hpp"
#include "spin.hpp"

namespace skyloft::synthetic {
namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);

// A connection shared by its reading task and its request tasks (the last one out frees it).
struct Connection {
  io::TcpStream stream;
  skyloft::Mutex write_lock;
};

void write_response(Connection& c, const wire::Response& resp) {
  std::uint8_t out[wire::kMessageSize];
  wire::encode_response(resp, out);
  std::lock_guard<skyloft::Mutex> g(c.write_lock);
  (void)c.stream.write_all(out, sizeof out);  // a failed write: the peer went away; its reader sees it
}

// `serve` is the program's request code, in the options that outlive the runtime (main owns them).
void serve_connection(std::shared_ptr<Connection> c, TaskPer task_per, const RequestHandler* serve) {
  std::uint8_t buf[16384];
  std::size_t have = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    auto r = c->stream.read(buf + have, sizeof buf - have, skyloft::deadline_after(kPoll));
    if (r.error() == std::errc::timed_out) continue;
    if (!r || r.value() == 0) return;  // closed, reset or shutting down
    have += r.value();
    std::size_t off = 0;
    while (have - off >= wire::kMessageSize) {
      wire::Request req;
      if (wire::decode_request(buf + off, have - off, &req) != wire::Decode::ok) return;  // cannot resync
      off += wire::kMessageSize;
      if (task_per == TaskPer::connection) {
        write_response(*c, (*serve)(req));
      } else {
        skyloft::spawn([c, req, serve] { write_response(*c, (*serve)(req)); }).detach();
      }
    }
    std::memmove(buf, buf + off, have - off);
    have -= off;
  }
}

void serve_tcp(const ServerOptions& o, const io::SocketAddr& addr, int* status) {
  auto l = io::TcpListener::bind(addr);
  if (!l) {
    fmt::print(stderr, "{}: listen on {}: {}\n", o.program, o.listen, l.error().message());
    *status = 1;
    return;
  }
  fmt::print("{}: skyloft ({}, preempt {}, quantum {} us) serving tcp on {}\n", o.program, o.config.policy,
             o.config.preempt, o.config.quantum_us, l->local_addr()->to_string());
  std::fflush(stdout);
  while (!g_stop.load(std::memory_order_relaxed)) {
    auto s = l->accept(skyloft::deadline_after(kPoll));
    if (!s) continue;
    s->set_nodelay(true);
    auto c = std::make_shared<Connection>();
    c->stream = std::move(s.value());
    skyloft::spawn([c, tp = o.task_per, serve = &o.serve]() mutable { serve_connection(std::move(c), tp, serve); }).detach();
  }
}

void serve_udp(const ServerOptions& o, const io::SocketAddr& addr, int* status) {
  auto bound = io::UdpSocket::bind(addr);
  if (!bound) {
    fmt::print(stderr, "{}: bind udp {}: {}\n", o.program, o.listen, bound.error().message());
    *status = 1;
    return;
  }
  auto sock = std::make_shared<io::UdpSocket>(std::move(bound.value()));
  fmt::print("{}: skyloft ({}, preempt {}, quantum {} us) serving udp on {}\n", o.program, o.config.policy,
             o.config.preempt, o.config.quantum_us, sock->local_addr()->to_string());
  std::fflush(stdout);
  std::uint8_t buf[2048];
  while (!g_stop.load(std::memory_order_relaxed)) {
    io::SocketAddr from;
    auto r = sock->recv_from(buf, sizeof buf, &from, skyloft::deadline_after(kPoll));
    if (!r) continue;
    wire::Request req;
    if (r.value() != wire::kMessageSize || wire::decode_request(buf, r.value(), &req) != wire::Decode::ok) continue;
    skyloft::spawn([sock, req, from, serve = &o.serve] {
      std::uint8_t out[wire::kMessageSize];
      wire::encode_response((*serve)(req), out);
      (void)sock->send_to(out, sizeof out, from);
    }).detach();
  }
}

}  // namespace

int serve_skyloft(const ServerOptions& o) {
  const auto addr = io::SocketAddr::parse(o.listen).value();
  int status = 0;
  try {
    skyloft::Runtime rt(o.config);
    rt.block_on([&] { o.udp ? serve_udp(o, addr, &status) : serve_tcp(o, addr, &status); });
    rt.shutdown();
  } catch (const skyloft::ConfigError& e) {
    fmt::print(stderr, "{}: {}\n", o.program, e.what());
    return 2;
  }
  return status;
}

}  // namespace skyloft::synthetic
