// memcached_wire.cpp - memcached text protocol requests and reply parsing (memcached_wire.hpp).
#include "memcached_wire.hpp"

#include <charconv>
#include <stdexcept>

#include <fmt/core.h>

namespace skyloft::wire::memcached {
namespace {

constexpr std::size_t kMaxKey = 250;
// The longest reply line we accept before calling the stream malformed (a VALUE line with a 250-byte key
// and three numbers fits easily).
constexpr std::size_t kMaxLine = 1024;

void check_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxKey) {
    throw std::invalid_argument(fmt::format("memcached key of {} bytes: keys have 1 to 250 bytes", key.size()));
  }
  for (unsigned char c : key) {
    if (c <= ' ' || c == 0x7f) throw std::invalid_argument("memcached key with a space or control character");
  }
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// A non-negative decimal that is the whole of `s`.
bool parse_u64(std::string_view s, std::uint64_t* v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

void append_get(std::string& out, std::string_view key) {
  check_key(key);
  out += "get ";
  out += key;
  out += "\r\n";
}

void append_set(std::string& out, std::string_view key, std::uint32_t flags, std::string_view value) {
  check_key(key);
  out += fmt::format("set {} {} 0 {}\r\n", key, flags, value.size());
  out += value;
  out += "\r\n";
}

const char* reply_name(Reply r) {
  switch (r) {
    case Reply::incomplete: return "incomplete";
    case Reply::hit: return "hit";
    case Reply::miss: return "miss";
    case Reply::stored: return "stored";
    case Reply::not_stored: return "not_stored";
    case Reply::error: return "error";
    case Reply::malformed: return "malformed";
  }
  return "?";
}

Reply parse_reply(std::string_view buf, std::size_t* consumed) {
  const std::size_t eol = buf.find("\r\n");
  if (eol == std::string_view::npos) return buf.size() > kMaxLine ? Reply::malformed : Reply::incomplete;
  const std::string_view line = buf.substr(0, eol);
  const std::size_t line_len = eol + 2;
  auto simple = [&](Reply r) {
    *consumed = line_len;
    return r;
  };
  if (line == "END") return simple(Reply::miss);
  if (line == "STORED") return simple(Reply::stored);
  if (line == "NOT_STORED" || line == "EXISTS" || line == "NOT_FOUND") return simple(Reply::not_stored);
  if (line == "ERROR" || starts_with(line, "CLIENT_ERROR ") || starts_with(line, "SERVER_ERROR ")) {
    return simple(Reply::error);
  }
  if (!starts_with(line, "VALUE ")) return Reply::malformed;
  // VALUE <key> <flags> <bytes> [<cas unique>]
  std::string_view rest = line.substr(6);
  std::string_view fields[4];
  std::size_t n = 0;
  while (!rest.empty() && n < 4) {
    std::size_t sp = rest.find(' ');
    fields[n++] = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  }
  std::uint64_t flags = 0, bytes = 0, cas = 0;
  if (n < 3 || !rest.empty() || fields[0].empty() || !parse_u64(fields[1], &flags) || !parse_u64(fields[2], &bytes) ||
      (n == 4 && !parse_u64(fields[3], &cas)) || flags > 0xffffffffu || bytes > (std::uint64_t{1} << 30)) {
    return Reply::malformed;
  }
  // <data>\r\nEND\r\n after the line (one key per get: exactly one VALUE block).
  const std::size_t data_end = line_len + static_cast<std::size_t>(bytes);
  if (buf.size() < data_end + 2) return Reply::incomplete;
  if (buf.substr(data_end, 2) != "\r\n") return Reply::malformed;
  if (buf.size() < data_end + 7) return buf.substr(data_end + 2) == std::string_view("END\r\n").substr(0, buf.size() - data_end - 2)
                                            ? Reply::incomplete
                                            : Reply::malformed;
  if (buf.substr(data_end + 2, 5) != "END\r\n") return Reply::malformed;
  *consumed = data_end + 7;
  return Reply::hit;
}

}  // namespace skyloft::wire::memcached
