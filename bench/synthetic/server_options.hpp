// server_options.hpp - skyloft-synthetic's command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arrivals.hpp"
#include "mix.hpp"
#include "skyloft/config.hpp"

namespace skyloft::synthetic {

enum class Mode { skyloft, linux };
enum class TaskPer { request, connection };

struct ServerOptions {
  Mode mode = Mode::skyloft;
  skyloft::Config config;         // --policy --preempt --quantum-us --cores --dispatcher-core (skyloft mode)
  int threads = 0;                // linux mode: pool threads (0: one per allowed core)
  std::string cores_text;         // linux mode: cores to pin the pool to ("" = allowed cores, not pinned)
  // Network service.
  std::string listen = "127.0.0.1:7000";
  bool udp = false;
  TaskPer task_per = TaskPer::request;
  double seconds = 0;  // stop after this long (0: at SIGINT / SIGTERM)
  // In-process generator (no network): --inprocess with these.
  bool inprocess = false;
  std::vector<double> rates;
  loadgen::ArrivalKind arrival = loadgen::ArrivalKind::poisson;
  std::optional<loadgen::RequestMix> mix;  // default bimodal:0.995:4us:10ms
  std::uint64_t duration_ns = 2'000'000'000, warmup_ns = 500'000'000, drain_ns = 1'000'000'000;
  std::optional<std::uint64_t> stop_p99_ns;
  std::string csv, label;
  std::uint64_t seed = 1;
  std::uint32_t gen_slice_us = 0;  // EEVDF slice of the generator thread (realtime.hpp); 0: default

  const loadgen::RequestMix& request_mix() const;
};

// Parses argv; a bad option prints "skyloft-synthetic: <precise error>" and the usage, then exits with 2.
ServerOptions parse_server_options(int argc, char** argv);

}  // namespace skyloft::synthetic
