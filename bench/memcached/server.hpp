// server.hpp - skyloft-memcached's two network servers over one ServerState: skyloft tasks (a task per
// connection, task-aware sockets) and the plain Linux baseline (an epoll thread pool). Both run until
// `stop` is set, then close every connection and return the process exit status.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "commands.hpp"
#include "skyloft/config.hpp"

namespace skyloft::memcached {

enum class Mode { skyloft, linux };

struct ServerOptions {
  Mode mode = Mode::skyloft;
  std::string host = "127.0.0.1";  // --listen
  int port = 11211;                // --port (0: any free port)
  skyloft::Config config;          // skyloft mode: --policy --preempt --quantum-us --cores
  int threads = 0;                 // linux mode: pool threads (0: one per core of --cores or allowed core)
  std::string cores_text;          // --cores (linux mode: pin the pool round robin; "" = not pinned)
  std::size_t memory_mb = 64;      // -m
  std::size_t max_item_size = 1024 * 1024;  // -I
  double seconds = 0;              // stop after this long (0: at SIGINT / SIGTERM)

  ServerSettings settings() const;
};

// Called once the listening socket is bound, with its port (tests listen on port 0).
using OnListening = std::function<void(std::uint16_t port)>;

int serve_skyloft(const ServerOptions& o, ServerState& state, const std::atomic<bool>& stop, const OnListening& ready = {});
int serve_linux(const ServerOptions& o, ServerState& state, const std::atomic<bool>& stop, const OnListening& ready = {});

// Parses argv; a bad option prints "skyloft-memcached: <precise error>" and the usage, then exits with 2.
ServerOptions parse_server_options(int argc, char** argv);

}  // namespace skyloft::memcached
