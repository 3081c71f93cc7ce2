// commands.hpp - what the memcached server does with a parsed request: the store operation and the reply,
// appended to an output buffer. Both servers (skyloft tasks, Linux thread pool) run this code.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "protocol.hpp"
#include "store.hpp"

namespace skyloft::memcached {

// A connection's counters since it last added them to the server's (Stats::add): plain fields, owned by
// the connection's task or thread, so the hot path touches no shared cache line.
struct Counters {
  std::uint64_t cmd_get = 0, cmd_set = 0, cmd_flush = 0, cmd_touch = 0;
  std::uint64_t get_hits = 0, get_misses = 0, delete_hits = 0, delete_misses = 0;
  std::uint64_t incr_hits = 0, incr_misses = 0, decr_hits = 0, decr_misses = 0;
  std::uint64_t cas_hits = 0, cas_misses = 0, cas_badval = 0, touch_hits = 0, touch_misses = 0;
  std::uint64_t store_too_large = 0, store_no_memory = 0, bytes_read = 0, bytes_written = 0;
};

// The server's counters: relaxed atomics, added to by every connection, read by "stats".
struct Stats {
  std::atomic<std::uint64_t> cmd_get{0}, cmd_set{0}, cmd_flush{0}, cmd_touch{0};
  std::atomic<std::uint64_t> get_hits{0}, get_misses{0}, delete_hits{0}, delete_misses{0};
  std::atomic<std::uint64_t> incr_hits{0}, incr_misses{0}, decr_hits{0}, decr_misses{0};
  std::atomic<std::uint64_t> cas_hits{0}, cas_misses{0}, cas_badval{0}, touch_hits{0}, touch_misses{0};
  std::atomic<std::uint64_t> store_too_large{0}, store_no_memory{0}, bytes_read{0}, bytes_written{0};
  std::atomic<std::uint64_t> curr_connections{0}, total_connections{0};

  void add(Counters& c);  // and zeroes c
  void reset();           // "stats reset": everything but the connection counts
};

struct ServerSettings {
  std::size_t max_item_size = 1024 * 1024;  // -I
  std::size_t memory_limit = 64u << 20;     // -m
  int threads = 0;                          // reported by "stats"
  int port = 0;                             // reported by "stats settings"
};

// Everything the requests of every connection share.
struct ServerState {
  explicit ServerState(const ServerSettings& s, std::function<std::int64_t()> clock = {});

  std::int64_t now() const { return clock(); }

  ServerSettings settings;
  std::function<std::int64_t()> clock;  // unix time in seconds; injectable for tests
  std::int64_t started;                 // clock() at construction (uptime)
  Store store;
  Stats stats;
  std::atomic<std::uint32_t> verbosity{0};
};

inline constexpr std::string_view kVersion = "1.6.0-skyloft";

// Expiration as sent (protocol.txt: 0 never; up to 30 days relative; more is a unix time; negative is
// already expired) -> the store's absolute form (0 never, -1 dead).
std::int64_t absolute_exptime(std::int64_t exptime, std::int64_t now);

enum class After { keep_open, close };

// Runs one complete request and appends its reply (nothing when noreply).
After execute(const Request& req, ServerState& state, Counters& counters, std::string& out);

// A malformed request (parse_request's result): appends its error reply, unless it asked for noreply.
// A "set" refused as too large also drops the key's old value, as memcached does.
After reject(const ParseResult& r, const Request& req, ServerState& state, Counters& counters, std::string& out);

}  // namespace skyloft::memcached
