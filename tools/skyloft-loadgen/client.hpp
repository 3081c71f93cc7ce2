// client.hpp - the open-loop generator: threads with epoll, each owning a share of the connections and of
// the rate, sending on its own arrival schedule and matching replies to requests.
//
// Per load point each thread:
//   1. connects its connections (TCP: connect + TCP_NODELAY; UDP: a connected socket each);
//   2. draws intended send times from its arrival process at rate / threads (superposed Poisson processes
//      are Poisson at the sum of the rates) and sends every request whose time has come, round robin over
//      its connections; a thread that is late sends the overdue ones at once;
//   3. between sends waits in epoll (sleep: epoll_pwait2 up to the next send time with 1 ns timer slack;
//      spin: polls) and reads replies, matching each to its request slot (synthetic: the echoed id;
//      memcached: the connection's FIFO);
//   4. after the window, drains replies until none is outstanding or the drain period ends.
// Requests whose intended time is in the warm-up are sent but not measured.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "options.hpp"
#include "report.hpp"

namespace skyloft::loadgen {

// Counters the progress line reads while a point runs (relaxed; written by the generator threads).
struct Progress {
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> errors{0};
};

// Runs one load point at `rate_rps`. Throws std::runtime_error when the server cannot be reached.
PointResult run_point(const Options& o, double rate_rps, Progress& progress);

// memcached: sets every key once (blocking, one connection), so that gets hit. Throws std::runtime_error.
void memcached_prefill(const Options& o);

}  // namespace skyloft::loadgen
