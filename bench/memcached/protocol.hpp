// protocol.hpp - the memcached text protocol's request side (memcached 1.6 protocol.txt): an incremental
// parser that turns the front of a byte buffer into one request, or says it needs more bytes, or names the
// error reply a malformed request gets.
//
// Invariants:
//   - parse_request() reads only buf[0, buf.size()); it never keeps a pointer past its return (the
//     Request's string_views point into `buf`, valid while the caller keeps those bytes).
//   - A complete request consumes its command line and, for storage commands, the data block and its
//     "\r\n". Pipelined requests in one buffer are parsed one call at a time.
//   - A malformed request consumes what the server skips to resynchronize: its command line, plus for a
//     storage command whose data block is known to follow (a valid length) `swallow` more bytes, which may
//     not have arrived yet (the caller discards them as they come).
//
// Lines end with "\r\n" (a bare "\n" is accepted, as memcached does). Tokens are separated by spaces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace skyloft::memcached {

enum class Command {
  get, gets, gat, gats,                              // retrieval (many keys)
  set, add, replace, append, prepend, cas,           // storage (a data block follows)
  del, incr, decr, touch,                            // one key
  flush_all, version, verbosity, stats, quit,        // the rest
};
const char* command_name(Command c);
bool is_storage(Command c);

inline constexpr std::size_t kMaxKeyLength = 250;
// The longest command line accepted (a "get" of many keys is long); beyond this without a newline the
// connection is closed ("CLIENT_ERROR line too long").
inline constexpr std::size_t kMaxLineLength = 64 * 1024;

struct Request {
  Command command = Command::get;
  std::vector<std::string_view> keys;  // retrieval: every key; one-key commands and storage: keys[0]
  std::uint32_t flags = 0;             // storage
  std::int64_t exptime = 0;            // storage, touch, gat/gats (as sent: relative, absolute or negative)
  std::uint64_t cas_unique = 0;        // cas
  std::uint64_t delta = 0;             // incr/decr
  std::int64_t delay = 0;              // flush_all (0: now)
  std::uint32_t verbosity = 0;
  std::string_view stats_group;        // "stats <group>"; empty for plain "stats"
  std::string_view data;               // storage: the data block without its "\r\n"
  bool noreply = false;
};

enum class Parse {
  complete,    // *out holds the request; `consumed` bytes belong to it
  incomplete,  // more bytes are needed; nothing consumed
  malformed,   // reply `error` (one line, no "\r\n"); skip `consumed` bytes, then `swallow` more
};

struct ParseResult {
  Parse status = Parse::incomplete;
  std::size_t consumed = 0;
  std::size_t swallow = 0;
  std::string_view error;  // a static string: "ERROR", "CLIENT_ERROR ...", "SERVER_ERROR ..."
  bool close = false;      // malformed beyond resynchronization: send the error, then close
  bool noreply = false;    // complete or malformed: the request asked for no reply
};

struct Limits {
  std::size_t max_item_size = 1024 * 1024;  // data block bytes; larger: "SERVER_ERROR object too large for cache"
};

ParseResult parse_request(std::string_view buf, Request* out, const Limits& limits = {});

// The error replies, exactly as memcached 1.6 sends them.
namespace reply {
inline constexpr std::string_view kError = "ERROR";
inline constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format";
inline constexpr std::string_view kBadDeleteFormat = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
inline constexpr std::string_view kBadChunk = "CLIENT_ERROR bad data chunk";
inline constexpr std::string_view kLineTooLong = "CLIENT_ERROR line too long";
inline constexpr std::string_view kBadDelta = "CLIENT_ERROR invalid numeric delta argument";
inline constexpr std::string_view kBadExptime = "CLIENT_ERROR invalid exptime argument";
inline constexpr std::string_view kNonNumeric = "CLIENT_ERROR cannot increment or decrement non-numeric value";
inline constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache";
inline constexpr std::string_view kOutOfMemory = "SERVER_ERROR out of memory storing object";
}  // namespace reply

}  // namespace skyloft::memcached
