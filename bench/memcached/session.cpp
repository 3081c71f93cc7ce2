// session.cpp - a connection's byte stream to requests and replies (session.hpp).
#include "session.hpp"

#include <algorithm>
#include <cstring>

namespace skyloft::memcached {
namespace {
constexpr std::size_t kInitialBuffer = 16 * 1024;
constexpr std::size_t kReadChunk = 4 * 1024;  // read_space() offers at least this much
}  // namespace

Session::Session(ServerState& state) : state_(state), in_(kInitialBuffer) {
  state_.stats.curr_connections.fetch_add(1, std::memory_order_relaxed);
  state_.stats.total_connections.fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  state_.stats.add(counters_);
  state_.stats.curr_connections.fetch_sub(1, std::memory_order_relaxed);
}

void Session::compact() {
  if (begin_ == 0) return;
  std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
}

std::span<char> Session::read_space() {
  if (begin_ == end_) {
    begin_ = end_ = 0;
    // After a big value, give the memory back.
    if (in_.size() > 4 * kInitialBuffer) {
      in_.assign(kInitialBuffer, 0);
      in_.shrink_to_fit();
    }
  }
  if (in_.size() - end_ < kReadChunk) compact();
  if (in_.size() - end_ < kReadChunk) in_.resize(in_.size() * 2);  // one request fills the buffer
  return {in_.data() + end_, in_.size() - end_};
}

After Session::received(std::size_t n) {
  end_ += n;
  counters_.bytes_read += n;
  After after = After::keep_open;
  const Limits limits{state_.settings.max_item_size};
  while (after == After::keep_open) {
    if (swallow_ > 0) {
      const std::size_t skip = std::min(swallow_, end_ - begin_);
      begin_ += skip;
      swallow_ -= skip;
      if (swallow_ > 0) break;
    }
    const std::string_view buf(in_.data() + begin_, end_ - begin_);
    if (buf.empty()) break;
    const ParseResult r = parse_request(buf, &req_, limits);
    if (r.status == Parse::incomplete) break;
    begin_ += r.consumed;
    if (r.status == Parse::complete) {
      after = execute(req_, state_, counters_, out_);
    } else {
      after = reject(r, req_, state_, counters_, out_);
      swallow_ = r.swallow;
    }
  }
  counters_.bytes_written += out_.size();
  state_.stats.add(counters_);
  return after;
}

void Session::clear_output() {
  out_.clear();
  if (out_.capacity() > 4 * kInitialBuffer) out_.shrink_to_fit();
}

}  // namespace skyloft::memcached
