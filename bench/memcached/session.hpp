// session.hpp - one memcached connection's byte stream: input buffering, parsing every complete request
// (pipelined ones too), skipping the data block of a refused request, and collecting the replies. The
// network layers (skyloft tasks, Linux thread pool) only move bytes in and out of a Session.
//
// Owned by one task or thread at a time; no locking inside.
//
//   Session s(state);
//   for (;;) {
//     auto space = s.read_space();                 // read at most space.size() bytes into space.data()
//     n = read(fd, space.data(), space.size());
//     After a = s.received(n);                     // serves what is complete
//     write_all(fd, s.output()); s.clear_output();
//     if (a == After::close) break;
//   }
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "commands.hpp"

namespace skyloft::memcached {

class Session {
 public:
  explicit Session(ServerState& state);
  ~Session();  // adds the last counters to the server's
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Free room at the end of the input buffer (grows it when a request is larger than the buffer).
  std::span<char> read_space();
  // `n` bytes were written into read_space(): serves every complete request, appends the replies.
  After received(std::size_t n);
  const std::string& output() const { return out_; }
  void clear_output();

 private:
  void compact();

  ServerState& state_;
  Counters counters_;
  Request req_;
  std::vector<char> in_;
  std::size_t begin_ = 0, end_ = 0;  // unparsed bytes are in_[begin_, end_)
  std::size_t swallow_ = 0;          // bytes of a refused data block still to skip
  std::string out_;
};

}  // namespace skyloft::memcached
