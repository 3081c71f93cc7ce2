// options.hpp - skyloft-loadgen's command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arrivals.hpp"
#include "mix.hpp"

namespace skyloft::loadgen {

enum class Transport { tcp, udp };
enum class Protocol { synthetic, memcached };
enum class WaitMode { sleep, spin };

struct MemcachedWorkload {
  std::uint32_t keys = 10000;       // keys "key:0" .. "key:<keys-1>", chosen uniformly
  std::uint32_t value_size = 32;    // bytes of every set's value
  double get_ratio = 0.9;           // share of gets (the rest are sets)
  bool prefill = true;              // set every key once before the first load point
};

struct Options {
  std::string server = "127.0.0.1:7000";
  Transport transport = Transport::tcp;
  Protocol protocol = Protocol::synthetic;
  std::vector<double> rates;                 // --rates (required)
  ArrivalKind arrival = ArrivalKind::poisson;
  std::optional<RequestMix> mix;             // synthetic only; default constant:10us
  MemcachedWorkload memcached;
  std::uint64_t duration_ns = 2'000'000'000;  // measured window of each point
  std::uint64_t warmup_ns = 500'000'000;      // before it, not measured
  std::uint64_t drain_ns = 1'000'000'000;     // after it, waiting for the last replies
  std::uint64_t pause_ns = 200'000'000;       // between points
  int connections = 16;
  int threads = 1;
  WaitMode wait = WaitMode::sleep;
  std::string csv;
  std::string label;
  std::optional<std::uint64_t> stop_p99_ns;  // end the sweep after a point whose p99 exceeds this
  std::uint64_t seed = 1;
  std::uint32_t gen_slice_us = 0;  // EEVDF slice of the generator threads (realtime.hpp); 0: default
  bool quiet = false;

  const RequestMix& request_mix() const;
};

// Parses argv; a bad option prints "skyloft-loadgen: <precise error>" and the usage, then exits with 2.
Options parse_options(int argc, char** argv);

}  // namespace skyloft::loadgen
