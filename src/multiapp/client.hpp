// client.hpp - the app side of skyloftd: connect, register, map the region, report state, unregister.
//
// The runtime creates one DaemonClient when SKYLOFT_DAEMON=<socket> (Config::daemon) is set. The client
// keeps its connection open for the app's lifetime: the daemon ends the registration when the connection
// closes, so a crashed app is released even before its pidfd is noticed.
//
// If the daemon dies or restarts, the app keeps its mappings and goes on (see tools/skyloftd/server.hpp):
// connection_lost() turns true, and reconnect() registers again at the same socket, replacing the id,
// generation, cores and region with the new daemon's. Until then the old region stays mapped.
//
// Not thread-safe: one thread (the runtime's) drives a client. The descriptor it exposes is shared memory
// and may be written from any thread with the atomics it is made of.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "multiapp/protocol.hpp"
#include "multiapp/shm_layout.hpp"
#include "multiapp/shm_region.hpp"

namespace skyloft::multiapp {

// Every failure to reach, register with or understand the daemon. The message starts with "skyloft: " and
// names the socket path.
class DaemonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ClientOptions {
  std::string socket_path;
  std::string app_name = "app";
  AppClass app_class = AppClass::be;
  std::uint16_t demand = 1;  // cores wanted (the daemon caps it at the cores it manages)
  int timeout_ms = 2000;     // per request
};

class DaemonClient {
 public:
  // Connects and registers; throws DaemonError ("skyloft: cannot reach skyloftd at PATH: ...", or the
  // daemon's error reply, or a region that fails its checks).
  explicit DaemonClient(ClientOptions options);
  ~DaemonClient();  // unregisters (best effort) and unmaps
  DaemonClient(const DaemonClient&) = delete;
  DaemonClient& operator=(const DaemonClient&) = delete;

  std::uint32_t app_id() const { return app_id_; }
  std::uint32_t generation() const { return generation_; }
  AppClass app_class() const { return options_.app_class; }
  std::uint32_t epoch() const { return epoch_; }
  // Core ids the app was made eligible for when it registered.
  const std::vector<int>& granted_cores() const { return granted_; }
  // Core ids the app is eligible for now (the control file, live).
  std::vector<int> current_cores() const;
  const MappedRegion& region() const { return region_; }
  AppDescriptor& descriptor() { return *region_.self(); }
  bool registered() const { return registered_; }

  // Reports into the app's own descriptor.
  void report_state(AppRunState s);
  void report_tasks(std::uint64_t live_tasks);
  void report_demand(std::uint32_t cores);

  // True once the daemon closed the connection. Does not block.
  bool connection_lost();
  // Registers again (same name, class, demand) at the same socket, retrying until timeout_ms passes.
  void reconnect(int timeout_ms);
  // Unregisters now and closes the connection; idempotent.
  void unregister();

 private:
  void connect_and_register();

  ClientOptions options_;
  Fd sock_;
  MappedRegion region_;
  std::uint32_t app_id_ = 0;
  std::uint32_t generation_ = 0;
  std::uint32_t epoch_ = 0;
  std::vector<int> granted_;
  bool registered_ = false;
};

// A read-only look at the daemon (skyloft-stat): its state reply and the whole region mapped read-only.
struct DaemonState {
  StateReply reply;
  MappedRegion region;
};
DaemonState query_daemon(const std::string& socket_path, int timeout_ms = 2000);

}  // namespace skyloft::multiapp
