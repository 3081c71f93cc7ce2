// server.hpp - skyloftd's event loop: the listening socket, one connection per peer, one pidfd per app.
//
// One thread, one poll() over everything, no call that can block on a peer:
//   - sockets are non-blocking; a message is read as far as it has arrived and kept per connection; a
//     started message must be complete within --message-timeout-ms;
//   - a reply that does not fit the peer's socket buffer at once ends that connection (replies are a few
//     hundred bytes, so only a peer that never reads gets there);
//   - any error reply ends the connection it is sent on; every other connection is untouched;
//   - a peer that is not registered must send a request within the timeout too (connections are a
//     bounded resource: kMaxConnections).
//
// An app's registration lasts until the first of: its unregister message, its connection closing, its
// process exiting (pidfd). Each ends the same way (release): the slot's generation is bumped, its
// descriptor and wake words are reset to the new generation, the cores are reassigned and published, and
// each core whose owner word named the app is given to its new owner (owner word, then a shared-futex
// wake). Release runs within one loop iteration of the event, i.e. within milliseconds of a kill -9.
//
// Daemon death or restart: the apps keep running. Their mappings of the old region stay valid (a memfd
// lives as long as a mapping of it), so handoffs between them keep working, on the cores they held; no one
// reclaims the cores of an app that dies meanwhile. Each app's connection reads end-of-file, which the
// client reports (DaemonClient::connection_lost). A restarted daemon creates a new region (a new epoch),
// removes the stale socket file, and knows nothing of the old apps: they re-register
// (DaemonClient::reconnect), get new ids, generations and cores, and move to the new region. On SIGTERM or
// SIGINT the daemon closes every connection (the apps see the same end-of-file) and removes its socket.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "multiapp/protocol.hpp"
#include "multiapp/shm_region.hpp"
#include "options.hpp"

namespace skyloftd {

class Server {
 public:
  explicit Server(DaemonOptions options);
  ~Server();
  // Binds the socket and serves until SIGTERM/SIGINT. Returns the process exit code.
  int run();

 private:
  struct Conn {
    skyloft::multiapp::Fd fd;
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    skyloft::multiapp::Fd peer_pidfd;  // SO_PEERPIDFD, if the kernel has it
    std::vector<std::uint8_t> buf;   // the message being read
    std::size_t have = 0;
    std::optional<skyloft::multiapp::Header> header;
    std::int64_t started_ms = 0;     // when the first byte of the current message arrived
    std::int64_t idle_since_ms = 0;  // accept or last reply: an unregistered peer must speak within the timeout
    int app = -1;                    // app id registered over this connection
    bool dead = false;               // closed; removed at the end of the loop iteration
  };
  struct App {
    std::uint32_t id = 0;
    std::uint32_t generation = 0;
    pid_t pid = 0;
    skyloft::multiapp::AppClass app_class = skyloft::multiapp::AppClass::be;
    std::uint32_t demand = 1;
    std::string name;
    std::uint64_t order = 0;         // registration order (the assignment rule is ordered)
    skyloft::multiapp::Fd pidfd;
    Conn* conn = nullptr;
  };

  bool open_socket();
  void accept_peers();
  void on_readable(Conn& c);
  void handle(Conn& c, const skyloft::multiapp::Message& m);
  void do_register(Conn& c, const skyloft::multiapp::RegisterRequest& r);
  void do_unregister(Conn& c, const skyloft::multiapp::UnregisterRequest& r);
  void do_query(Conn& c);
  void reject(Conn& c, skyloft::multiapp::ErrorCode code, const std::string& why);
  void close_conn(Conn& c, const char* why);
  // Ends app `id`'s registration. keep_connection: it unregistered and may go on talking; otherwise (death,
  // hangup, a bad message) its connection is closed too.
  void release(std::uint32_t id, const char* why, bool keep_connection = false);
  void reassign();
  void expire_partial_messages();
  bool peer_allowed(const Conn& c) const;
  std::string peer_name(const Conn& c) const;

  DaemonOptions opt_;
  std::unique_ptr<skyloft::multiapp::DaemonRegion> region_;
  skyloft::multiapp::Fd listen_fd_, signal_fd_;
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::array<std::optional<App>, skyloft::multiapp::kMaxApps> apps_;
  std::uint64_t next_order_ = 0;
};

}  // namespace skyloftd
