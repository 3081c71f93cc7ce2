// server_options.hpp - the command line of the servers built on these modes (skyloft-synthetic, and
// skyloft-rocksdb through a ServerProgram), and the request code they serve.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "arrivals.hpp"
#include "mix.hpp"
#include "skyloft/config.hpp"
#include "synthetic_wire.hpp"

namespace skyloft::bench {
class Args;
}

namespace skyloft::synthetic {

enum class Mode { skyloft, linux };
enum class TaskPer { request, connection };
// Who releases the in-process arrivals: a generator thread of its own (waiting for each intended time by
// sleeping or spinning), or the runtime's polling thread (Runtime::add_poller), as the original's
// dispatcher released them.
enum class Generator { thread, poller };
enum class GenWait { sleep, spin };

// The request code every mode runs (network servers on skyloft and on the pool, the in-process generator).
// Called on a task or a pool thread, concurrently; the response goes back to the client as it is.
using RequestHandler = std::function<wire::Response(const wire::Request&)>;

struct ServerOptions {
  std::string program = "skyloft-synthetic";  // prefixes every message
  RequestHandler serve;                       // the request code (default: the synthetic spin, spin.hpp)
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
  int gen_core = -1;               // --gen-core: the core the generator thread is pinned to (-1: unpinned)
  Generator generator = Generator::thread;  // --generator
  GenWait gen_wait = GenWait::sleep;        // --gen-wait (the generator thread)
  std::uint32_t pool_slice_us = 0;          // --slice-us: EEVDF slice of each pool thread (linux mode); 0: default

  const loadgen::RequestMix& request_mix() const;
};

// A server program on these modes: its name, a description heading the usage, its own flags.
struct ServerProgram {
  const char* name = "skyloft-synthetic";
  std::string_view about = "  Synthetic server: every request spins its service time. Runs on skyloft or on a Linux thread pool.\n";
  std::string_view extra_usage;  // lines appended to the usage
  // Takes the current argument if it is one of the program's flags (true), else false. May call
  // args.usage() with a precise error.
  std::function<bool(bench::Args&)> parse_flag;
  bool mix_flag = true;  // whether --mix is accepted (a program that draws its own mix refuses it)
};

// Parses argv; a bad option prints "<program>: <precise error>" and the usage, then exits with 2.
ServerOptions parse_server_options(int argc, char** argv);
ServerOptions parse_server_options(int argc, char** argv, const ServerProgram& program);

}  // namespace skyloft::synthetic
