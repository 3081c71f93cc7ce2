// socket_io.hpp - the Unix-socket side of the skyloftd protocol: the default socket path, sending a message
// with file descriptors (SCM_RIGHTS), and the blocking, deadline-bounded receive that clients use.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "multiapp/protocol.hpp"
#include "multiapp/shm_region.hpp"

namespace skyloft::multiapp {

// /run/skyloft/skyloftd.sock for root, $XDG_RUNTIME_DIR/skyloft/skyloftd.sock otherwise. Throws
// std::runtime_error when neither applies (not root and XDG_RUNTIME_DIR unset or empty).
std::string default_socket_path();

// Connects a stream socket to `path` (blocking, close-on-exec). Returns the fd, or -1 with errno set.
// A path too long for sockaddr_un fails with ENAMETOOLONG.
int connect_unix(const std::string& path);

// Sends one whole message and `fds` in one sendmsg(MSG_NOSIGNAL, plus MSG_DONTWAIT if `nonblocking`).
// Returns an empty string on success, else why not. A short write counts as a failure: messages are far
// smaller than a socket buffer, so a peer that does not read is not worth waiting for.
std::string send_message(int sock, const Message& m, std::span<const int> fds = {}, bool nonblocking = false);

struct Received {
  Parsed<Message> message;  // !ok(): error says what went wrong (closed, timeout, malformed)
  std::vector<Fd> fds;
  bool closed = false;      // the peer closed the connection before a whole message arrived
};

// Reads exactly one message, waiting at most timeout_ms in total; collects the fds that came with it.
Received receive_message(int sock, int timeout_ms);

}  // namespace skyloft::multiapp
