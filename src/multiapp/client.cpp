// client.cpp - DaemonClient and query_daemon on top of socket_io and shm_region.
#include "multiapp/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "multiapp/socket_io.hpp"

namespace skyloft::multiapp {
namespace {

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

Fd connect_or_throw(const std::string& path) {
  Fd s(connect_unix(path));
  if (!s) {
    throw DaemonError(fmt::format("skyloft: cannot reach skyloftd at {}: {}{}", path, std::strerror(errno),
                                  errno == ENOENT || errno == ECONNREFUSED ? " (is skyloftd running?)" : ""));
  }
  return s;
}

// Sends a request and reads its reply; an error reply or a broken reply throws.
Received request(int sock, const std::string& path, const Message& m, int timeout_ms) {
  if (std::string err = send_message(sock, m); !err.empty()) {
    // The daemon may have refused us at once (a peer it does not allow) and closed: its reason is
    // waiting in our receive buffer.
    Received early = receive_message(sock, 100);
    if (early.message.ok()) {
      if (const auto* e = std::get_if<ErrorReply>(&*early.message.value)) {
        throw DaemonError(fmt::format("skyloft: skyloftd at {} refused the connection: {}: {}", path,
                                      error_code_name(e->code), e->text));
      }
    }
    throw DaemonError(fmt::format("skyloft: cannot talk to skyloftd at {}: {}", path, err));
  }
  Received r = receive_message(sock, timeout_ms);
  if (!r.message.ok()) {
    throw DaemonError(fmt::format("skyloft: bad reply from skyloftd at {}: {}", path, r.message.error.message));
  }
  if (const auto* e = std::get_if<ErrorReply>(&*r.message.value)) {
    throw DaemonError(fmt::format("skyloft: skyloftd at {} refused the {}: {}: {}", path, msg_type_name(type_of(m)),
                                  error_code_name(e->code), e->text));
  }
  return r;
}

}  // namespace

DaemonClient::DaemonClient(ClientOptions options) : options_(std::move(options)) {
  if (std::string why = check_app_name(options_.app_name); !why.empty()) throw DaemonError("skyloft: " + why);
  connect_and_register();
}

DaemonClient::~DaemonClient() {
  try {
    unregister();
  } catch (...) {
    // The daemon may be gone; it releases us when the connection closes anyway.
  }
}

void DaemonClient::connect_and_register() {
  Fd s = connect_or_throw(options_.socket_path);
  RegisterRequest req{options_.app_name, options_.app_class, static_cast<std::uint32_t>(getpid()), options_.demand};
  Received r = request(s.get(), options_.socket_path, Message(req), options_.timeout_ms);
  const auto* reg = std::get_if<RegisteredReply>(&*r.message.value);
  if (reg == nullptr) {
    throw DaemonError(fmt::format("skyloft: skyloftd at {} answered register with a '{}' message", options_.socket_path,
                                  msg_type_name(type_of(*r.message.value))));
  }
  if (reg->nfds != r.fds.size() || reg->max_apps != kMaxApps || reg->region_version != kRegionVersion) {
    throw DaemonError(fmt::format("skyloft: skyloftd at {} speaks another region layout (version {}, {} apps, {} fds; "
                                  "this build: version {}, {} apps)",
                                  options_.socket_path, reg->region_version, reg->max_apps, r.fds.size(), kRegionVersion, kMaxApps));
  }
  MappedRegion region;
  try {
    region = MappedRegion::from_registered(std::move(r.fds), reg->app_id);
  } catch (const RegionError& e) {
    throw DaemonError(fmt::format("skyloft: shared region from skyloftd at {}: {}", options_.socket_path, e.what()));
  }
  if (region.control().epoch != reg->epoch) {
    throw DaemonError(fmt::format("skyloft: shared region epoch {:08x} differs from the reply's {:08x}",
                                  region.control().epoch, reg->epoch));
  }
  region_ = std::move(region);
  sock_ = std::move(s);
  app_id_ = reg->app_id;
  generation_ = reg->generation;
  epoch_ = reg->epoch;
  granted_.assign(reg->cores.begin(), reg->cores.end());
  registered_ = true;
  descriptor().pid.store(static_cast<std::uint32_t>(getpid()), std::memory_order_relaxed);
  report_state(AppRunState::starting);
}

std::vector<int> DaemonClient::current_cores() const {
  std::vector<int> out;
  ControlSnapshot snap;
  if (!region_.mapped() || !read_control(region_.control(), snap)) return out;
  for (std::uint32_t i = 0; i < snap.ncores; ++i) {
    if (app_id_ < kMaxApps && (snap.cores[i].eligible & (1u << app_id_))) out.push_back(static_cast<int>(snap.cores[i].cpu));
  }
  return out;
}

void DaemonClient::report_state(AppRunState s) {
  if (!region_.self()) return;
  descriptor().run_state.store(static_cast<std::uint32_t>(s), std::memory_order_relaxed);
  descriptor().heartbeat_ns.store(now_ns(), std::memory_order_release);
}

void DaemonClient::report_tasks(std::uint64_t live_tasks) {
  if (!region_.self()) return;
  descriptor().tasks.store(live_tasks, std::memory_order_relaxed);
  descriptor().heartbeat_ns.store(now_ns(), std::memory_order_release);
}

void DaemonClient::report_demand(std::uint32_t cores) {
  if (!region_.self()) return;
  descriptor().demand.store(cores, std::memory_order_relaxed);
}

bool DaemonClient::connection_lost() {
  if (!sock_) return true;
  pollfd p{sock_.get(), POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  char byte;
  ssize_t n = recv(sock_.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || (p.revents & (POLLHUP | POLLERR))) {
    sock_.reset();
    registered_ = false;
    return true;
  }
  return false;
}

void DaemonClient::reconnect(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  sock_.reset();
  registered_ = false;
  for (;;) {
    try {
      connect_and_register();
      return;
    } catch (const DaemonError&) {
      if (std::chrono::steady_clock::now() >= deadline) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void DaemonClient::unregister() {
  if (!registered_ || !sock_) return;
  report_state(AppRunState::exiting);
  registered_ = false;
  Fd s = std::move(sock_);
  request(s.get(), options_.socket_path, Message(UnregisterRequest{app_id_, generation_}), std::min(options_.timeout_ms, 1000));
}

DaemonState query_daemon(const std::string& socket_path, int timeout_ms) {
  Fd s = connect_or_throw(socket_path);
  Received r = request(s.get(), socket_path, Message(QueryRequest{}), timeout_ms);
  const auto* st = std::get_if<StateReply>(&*r.message.value);
  if (st == nullptr) {
    throw DaemonError(fmt::format("skyloft: skyloftd at {} answered query with a '{}' message", socket_path,
                                  msg_type_name(type_of(*r.message.value))));
  }
  DaemonState out;
  out.reply = *st;
  if (st->nfds != r.fds.size()) {
    throw DaemonError(fmt::format("skyloft: skyloftd at {} announced {} fds and sent {}", socket_path, st->nfds, r.fds.size()));
  }
  try {
    out.region = MappedRegion::from_state(std::move(r.fds));
  } catch (const RegionError& e) {
    throw DaemonError(fmt::format("skyloft: shared region from skyloftd at {}: {}", socket_path, e.what()));
  }
  return out;
}

}  // namespace skyloft::multiapp
