// protocol.cpp - the memcached text protocol's request parser (protocol.hpp).
//
// Where protocol.txt leaves a case open, the reply is the one memcached 1.6 gives, with two deliberate
// differences: flags above 2^32-1 are a bad command line (1.6 silently truncates them) and keys with
// control characters are refused (protocol.txt forbids them; 1.6 does not check).
#include "protocol.hpp"

#include <array>
#include <charconv>
#include <limits>

namespace skyloft::memcached {
namespace {

// The most tokens any command but the retrievals takes ("cas k f e b c noreply" is 7).
constexpr std::size_t kMaxTokens = 8;
// Per-item bookkeeping counted against --max-item-size with the key and the data, as memcached counts its
// item header (so a 1 MiB limit refuses a value of exactly 1 MiB, as memcached does).
constexpr std::size_t kItemOverhead = 48;

struct Tokens {
  std::array<std::string_view, kMaxTokens> v;
  std::size_t n = 0;
  bool overflow = false;  // more than kMaxTokens
};

Tokens tokenize(std::string_view line) {
  Tokens t;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i == line.size()) break;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (t.n == kMaxTokens) {
      t.overflow = true;
      break;
    }
    t.v[t.n++] = line.substr(start, i - start);
  }
  return t;
}

template <class T>
bool parse_number(std::string_view s, T* out) {
  if (s.empty()) return false;
  if constexpr (std::is_unsigned_v<T>) {
    if (s[0] == '-' || s[0] == '+') return false;
  }
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool valid_key(std::string_view k) {
  if (k.empty() || k.size() > kMaxKeyLength) return false;
  for (const char ch : k) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

ParseResult malformed(std::size_t consumed, std::string_view error, bool noreply = false, std::size_t swallow = 0) {
  ParseResult r;
  r.status = Parse::malformed;
  r.consumed = consumed;
  r.swallow = swallow;
  r.error = error;
  r.noreply = noreply;
  return r;
}

ParseResult complete(std::size_t consumed, bool noreply) {
  ParseResult r;
  r.status = Parse::complete;
  r.consumed = consumed;
  r.noreply = noreply;
  return r;
}

struct CommandName {
  std::string_view name;
  Command command;
};
constexpr CommandName kCommands[] = {
    {"get", Command::get},         {"gets", Command::gets},       {"gat", Command::gat},
    {"gats", Command::gats},       {"set", Command::set},         {"add", Command::add},
    {"replace", Command::replace}, {"append", Command::append},   {"prepend", Command::prepend},
    {"cas", Command::cas},         {"delete", Command::del},      {"incr", Command::incr},
    {"decr", Command::decr},       {"touch", Command::touch},     {"flush_all", Command::flush_all},
    {"version", Command::version}, {"verbosity", Command::verbosity}, {"stats", Command::stats},
    {"quit", Command::quit},
};

// Retrievals: "get|gets <key>*" and "gat|gats <exptime> <key>*"; keys are read straight from the line
// (there may be many).
ParseResult parse_retrieval(std::string_view line, std::size_t consumed, std::string_view rest, Request* out) {
  out->keys.clear();
  std::size_t i = 0;
  bool need_exptime = out->command == Command::gat || out->command == Command::gats;
  while (i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    if (i == rest.size()) break;
    const std::size_t start = i;
    while (i < rest.size() && rest[i] != ' ') ++i;
    const std::string_view tok = rest.substr(start, i - start);
    if (need_exptime) {
      if (!parse_number(tok, &out->exptime)) return malformed(consumed, reply::kBadExptime);
      need_exptime = false;
      continue;
    }
    if (!valid_key(tok)) return malformed(consumed, reply::kBadFormat);
    out->keys.push_back(tok);
  }
  (void)line;
  // "get" alone is an unknown command to memcached; "gat <exptime>" alone returns END.
  if (need_exptime || (out->keys.empty() && (out->command == Command::get || out->command == Command::gets))) {
    return malformed(consumed, reply::kError);
  }
  return complete(consumed, false);
}

// Storage: "<cmd> <key> <flags> <exptime> <bytes> [noreply]" and "cas ... <bytes> <cas unique> [noreply]",
// then <bytes> of data and "\r\n".
ParseResult parse_storage(std::string_view buf, std::size_t line_end, const Tokens& t, Request* out,
                          const Limits& limits) {
  const std::size_t consumed = line_end;
  const bool is_cas = out->command == Command::cas;
  const std::size_t base = is_cas ? 6 : 5;
  if (t.overflow || (t.n != base && t.n != base + 1)) return malformed(consumed, reply::kError);
  out->noreply = t.n == base + 1 && t.v[base] == "noreply";
  // A last token other than "noreply" is ignored, as memcached does.
  const std::string_view key = t.v[1];
  std::int64_t bytes = 0;
  if (!valid_key(key) || !parse_number(t.v[2], &out->flags) || !parse_number(t.v[3], &out->exptime) ||
      !parse_number(t.v[4], &bytes) || bytes < 0 || bytes > std::numeric_limits<std::int32_t>::max() - 2 ||
      (is_cas && !parse_number(t.v[5], &out->cas_unique))) {
    return malformed(consumed, reply::kBadFormat, out->noreply);
  }
  out->keys.assign(1, key);
  const auto n = static_cast<std::size_t>(bytes);
  if (n + key.size() + kItemOverhead > limits.max_item_size) {
    // The data block is skipped as it arrives (the caller swallows it).
    return malformed(consumed, reply::kTooLarge, out->noreply, n + 2);
  }
  if (buf.size() - line_end < n + 2) return ParseResult{};  // incomplete
  if (buf[line_end + n] != '\r' || buf[line_end + n + 1] != '\n') {
    return malformed(line_end + n + 2, reply::kBadChunk, out->noreply);
  }
  out->data = buf.substr(line_end, n);
  return complete(line_end + n + 2, out->noreply);
}

}  // namespace

const char* command_name(Command c) {
  for (const auto& e : kCommands) {
    if (e.command == c) return e.name.data();
  }
  return "?";
}

bool is_storage(Command c) {
  return c == Command::set || c == Command::add || c == Command::replace || c == Command::append ||
         c == Command::prepend || c == Command::cas;
}

ParseResult parse_request(std::string_view buf, Request* out, const Limits& limits) {
  const std::size_t nl = buf.find('\n');
  if (nl == std::string_view::npos) {
    if (buf.size() > kMaxLineLength) {
      ParseResult r = malformed(buf.size(), reply::kLineTooLong);
      r.close = true;
      return r;
    }
    return ParseResult{};  // incomplete
  }
  const std::size_t consumed = nl + 1;
  std::string_view line = buf.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > kMaxLineLength) {
    ParseResult r = malformed(consumed, reply::kLineTooLong);
    r.close = true;
    return r;
  }
  *out = Request{};
  // The command word.
  std::size_t i = 0;
  while (i < line.size() && line[i] == ' ') ++i;
  std::size_t j = i;
  while (j < line.size() && line[j] != ' ') ++j;
  const std::string_view word = line.substr(i, j - i);
  const CommandName* found = nullptr;
  for (const auto& e : kCommands) {
    if (e.name == word) {
      found = &e;
      break;
    }
  }
  if (found == nullptr) return malformed(consumed, reply::kError);
  out->command = found->command;
  const std::string_view rest = line.substr(j);
  switch (out->command) {
    case Command::get:
    case Command::gets:
    case Command::gat:
    case Command::gats:
      return parse_retrieval(line, consumed, rest, out);
    default:
      break;
  }
  const Tokens t = tokenize(line);
  if (is_storage(out->command)) return parse_storage(buf, consumed, t, out, limits);
  if (t.overflow) return malformed(consumed, reply::kError);
  const bool last_noreply = t.n >= 2 && t.v[t.n - 1] == "noreply";
  switch (out->command) {
    case Command::del: {
      // "delete <key> [0] [noreply]" (the 0 is a relic of the removed hold time).
      if (t.n < 2 || t.n > 4) return malformed(consumed, reply::kError);
      out->noreply = last_noreply && t.n > 2;
      const bool zero = t.n > 2 && t.v[2] == "0";
      const bool valid = t.n == 2 || (t.n == 3 && (zero || out->noreply)) || (t.n == 4 && zero && out->noreply);
      if (!valid) return malformed(consumed, reply::kBadDeleteFormat, out->noreply);
      if (!valid_key(t.v[1])) return malformed(consumed, reply::kBadFormat, out->noreply);
      out->keys.assign(1, t.v[1]);
      return complete(consumed, out->noreply);
    }
    case Command::incr:
    case Command::decr:
    case Command::touch: {
      if (t.n != 3 && t.n != 4) return malformed(consumed, reply::kError);
      out->noreply = t.n == 4 && last_noreply;
      if (!valid_key(t.v[1])) return malformed(consumed, reply::kBadFormat, out->noreply);
      if (out->command == Command::touch) {
        if (!parse_number(t.v[2], &out->exptime)) return malformed(consumed, reply::kBadExptime, out->noreply);
      } else if (!parse_number(t.v[2], &out->delta)) {
        return malformed(consumed, reply::kBadDelta, out->noreply);
      }
      out->keys.assign(1, t.v[1]);
      return complete(consumed, out->noreply);
    }
    case Command::flush_all: {
      // "flush_all [delay] [noreply]"; memcached accepts a negative delay (flush now).
      if (t.n > 3) return malformed(consumed, reply::kError);
      out->noreply = last_noreply;
      const std::size_t args = t.n - 1 - (out->noreply ? 1 : 0);
      if (args == 1 && !parse_number(t.v[1], &out->delay)) return malformed(consumed, reply::kBadExptime, out->noreply);
      if (out->delay < 0) out->delay = 0;
      return complete(consumed, out->noreply);
    }
    case Command::verbosity: {
      // "verbosity <level> [noreply]": memcached ignores a second argument that is not noreply.
      if (t.n != 2 && t.n != 3) return malformed(consumed, reply::kError);
      out->noreply = t.n == 3 && last_noreply;
      if (!parse_number(t.v[1], &out->verbosity)) return malformed(consumed, reply::kBadFormat, out->noreply);
      return complete(consumed, out->noreply);
    }
    case Command::stats:
      if (t.n > 2) return malformed(consumed, reply::kError);  // no stats group we serve takes arguments
      if (t.n == 2) out->stats_group = t.v[1];
      return complete(consumed, false);
    case Command::version:
    case Command::quit:
      return complete(consumed, false);  // memcached ignores extra tokens here
    default:
      return malformed(consumed, reply::kError);
  }
}

}  // namespace skyloft::memcached
