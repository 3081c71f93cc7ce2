// net_skyloft.cpp - the memcached server on skyloft: an acceptor task and a task per connection, on the
// task-aware sockets of io.hpp (a read parks the task, not its worker).
//
// Each connection's task reads into its Session, serves every complete request there (pipelined ones in
// one batch), and writes the batch's replies with one write_all. Serving runs under a PreemptGuard: the
// store's shard locks are kernel mutexes, and a task preempted while holding one could leave another task
// of the same kernel thread blocked on it. Blocking calls carry 100 ms deadlines so that every task sees
// `stop` soon; the runtime is shut down only after the last connection task has returned.
#include <atomic>
#include <chrono>

#include <fmt/core.h>

#include "server.hpp"
#include "session.hpp"
#include "skyloft/io.hpp"
#include "skyloft/preempt.hpp"
#include "skyloft/skyloft.hpp"

namespace skyloft::memcached {
namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);

void serve_connection(io::TcpStream stream, ServerState& state, const std::atomic<bool>& stop) {
  Session session(state);
  while (!stop.load(std::memory_order_relaxed)) {
    const auto space = session.read_space();
    auto r = stream.read(space.data(), space.size(), skyloft::deadline_after(kPoll));
    if (r.error() == std::errc::timed_out) continue;
    if (!r || r.value() == 0) return;  // closed, reset or shutting down
    After after;
    {
      skyloft::PreemptGuard no_preemption;
      after = session.received(r.value());
    }
    if (!session.output().empty()) {
      const auto w = stream.write_all(session.output().data(), session.output().size());
      session.clear_output();
      if (!w) return;  // the peer went away
    }
    if (after == After::close) return;
  }
}

}  // namespace

int serve_skyloft(const ServerOptions& o, ServerState& state, const std::atomic<bool>& stop, const OnListening& ready) {
  auto addr = io::SocketAddr::parse(fmt::format("{}:{}", o.host, o.port));
  if (!addr) {
    fmt::print(stderr, "skyloft-memcached: --listen {}: not an IPv4 address\n", o.host);
    return 2;
  }
  int status = 0;
  try {
    skyloft::Runtime rt(o.config);
    rt.block_on([&] {
      auto l = io::TcpListener::bind(*addr);
      if (!l) {
        fmt::print(stderr, "skyloft-memcached: listen on {}: {}\n", addr->to_string(), l.error().message());
        status = 1;
        return;
      }
      const std::uint16_t port = l->local_addr()->port();
      state.settings.port = port;
      fmt::print("skyloft-memcached: skyloft ({}, preempt {}, quantum {} us) serving tcp on {}:{}\n", o.config.policy,
                 o.config.preempt, o.config.quantum_us, o.host, port);
      std::fflush(stdout);
      if (ready) ready(port);
      std::atomic<int> live{0};  // connection tasks still running
      while (!stop.load(std::memory_order_relaxed)) {
        auto s = l->accept(skyloft::deadline_after(kPoll));
        if (!s) {
          // timed out, or out of descriptors: wait a little rather than spin on the error
          if (s.error() != std::errc::timed_out) skyloft::this_task::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        (void)s->set_nodelay(true);
        live.fetch_add(1, std::memory_order_relaxed);
        skyloft::spawn([stream = std::move(s.value()), &state, &stop, &live]() mutable {
          serve_connection(std::move(stream), state, stop);
          live.fetch_sub(1, std::memory_order_release);
        }).detach();
      }
      while (live.load(std::memory_order_acquire) > 0) skyloft::this_task::sleep_for(std::chrono::milliseconds(5));
    });
    rt.shutdown();
  } catch (const skyloft::ConfigError& e) {
    fmt::print(stderr, "skyloft-memcached: {}\n", e.what());
    return 2;
  }
  return status;
}

}  // namespace skyloft::memcached
