// memcached_fuzz.cpp - libFuzzer target for the memcached server's request parser and sessions.
//
// Properties checked on every input (ASan and UBSan catch reads out of bounds and undefined behaviour):
//   1. parse_request() consumes nothing when incomplete, at most the input when complete or malformed,
//      and its views (keys, data) lie inside the input;
//   2. a Session fed the input in two pieces (split where the first byte says) replies exactly what one fed
//      it at once does (the replies that depend on when bytes arrived, rusage and byte counts, are removed).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "protocol.hpp"
#include "session.hpp"

namespace mc = skyloft::memcached;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

std::string serve(std::string_view input, std::size_t split) {
  mc::ServerSettings settings;
  settings.memory_limit = 1 << 20;
  settings.max_item_size = 64 * 1024;
  mc::ServerState state(settings, [] { return std::int64_t{1'800'000'000}; });
  std::string out;
  mc::Session s(state);
  std::size_t off = 0;
  while (off < input.size()) {
    const std::size_t piece_end = off < split ? split : input.size();
    auto space = s.read_space();
    const std::size_t n = std::min(space.size(), piece_end - off);
    std::memcpy(space.data(), input.data() + off, n);
    off += n;
    const mc::After a = s.received(n);
    out += s.output();
    s.clear_output();
    if (a == mc::After::close) break;
  }
  // Drop what depends on arrival: CPU time and byte counters of "stats".
  std::string kept;
  std::size_t i = 0;
  while (i < out.size()) {
    std::size_t e = out.find("\r\n", i);
    e = e == std::string::npos ? out.size() : e + 2;
    const std::string_view line(out.data() + i, e - i);
    if (line.rfind("STAT rusage_", 0) != 0 && line.rfind("STAT bytes_", 0) != 0) kept.append(line);
    i = e;
  }
  return kept;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  mc::Request req;
  const mc::Limits limits{64 * 1024};
  const mc::ParseResult r = mc::parse_request(in, &req, limits);
  if (r.status == mc::Parse::incomplete && r.consumed != 0) std::abort();
  if (r.consumed > size) std::abort();
  if (r.status == mc::Parse::complete) {
    for (const auto k : req.keys) {
      if (!inside(k, in) || k.empty() || k.size() > mc::kMaxKeyLength) std::abort();
    }
    if (!inside(req.data, in)) std::abort();
  }
  if (r.status == mc::Parse::malformed && r.error.empty()) std::abort();

  if (size == 0) return 0;
  const std::size_t split = data[0] % size;
  if (serve(in, split) != serve(in, 0)) std::abort();
  return 0;
}
