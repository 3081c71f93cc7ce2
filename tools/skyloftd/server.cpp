// server.cpp - skyloftd's poll loop, peer authentication, registration, release and core publication.
#include "server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "multiapp/assignment.hpp"
#include "multiapp/shm_layout.hpp"
#include "multiapp/socket_io.hpp"
#include "skyloft/config.hpp"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5
#endif

namespace skyloftd {

using namespace skyloft::multiapp;

namespace {

constexpr std::size_t kMaxConnections = 256;
constexpr int kMessagesPerWakeup = 16;  // per connection and loop iteration, so no peer starves the others

std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

int pidfd_open_compat(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// Creates the missing directories of `dir` (mode 0755: the socket itself is open to all, SO_PEERCRED decides).
bool make_dirs(const std::string& dir) {
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      log(LogLevel::error, "cannot create directory {}: {}", prefix, std::strerror(errno));
      return false;
    }
  }
  return true;
}

// The sequence lock around a publication to the control file (readers: read_control()).
class Publication {
 public:
  explicit Publication(ControlTable& c) : c_(c) {
    std::uint32_t s = c_.seq.load(std::memory_order_relaxed);
    c_.seq.store(s + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  ~Publication() { c_.seq.store(c_.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

 private:
  ControlTable& c_;
};

std::string join_ids(const auto& ids) {
  std::string s;
  for (auto id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s.empty() ? "none" : s;
}

}  // namespace

Server::Server(DaemonOptions options) : opt_(std::move(options)) {}

Server::~Server() {
  conns_.clear();
  if (listen_fd_) {
    // Remove the socket only if it is still ours (a second daemon may have replaced a file we lost).
    struct stat st {};
    if (lstat(opt_.socket_path.c_str(), &st) == 0 && st.st_dev == socket_dev_ && st.st_ino == socket_ino_) {
      unlink(opt_.socket_path.c_str());
    }
  }
}

bool Server::open_socket() {
  const std::string& path = opt_.socket_path;
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    log(LogLevel::error, "socket path {} is {} bytes long; the limit is {}", path, path.size(), sizeof addr.sun_path - 1);
    return false;
  }
  std::size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0 && !make_dirs(path.substr(0, slash))) return false;

  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      log(LogLevel::error, "{} exists and is not a socket; remove it or pick another --socket", path);
      return false;
    }
    int probe = connect_unix(path);
    if (probe >= 0) {
      close(probe);
      log(LogLevel::error, "another skyloftd is already listening on {}", path);
      return false;
    }
    log(LogLevel::info, "removing stale socket {} (left by a daemon that died)", path);
    unlink(path.c_str());
  }

  listen_fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_) {
    log(LogLevel::error, "socket: {}", std::strerror(errno));
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    log(LogLevel::error, "cannot bind {}: {}", path, std::strerror(errno));
    listen_fd_.reset();
    return false;
  }
  if (lstat(path.c_str(), &st) == 0) {
    socket_dev_ = st.st_dev;
    socket_ino_ = st.st_ino;
  }
  chmod(path.c_str(), 0666);
  if (listen(listen_fd_.get(), 128) != 0) {
    log(LogLevel::error, "listen on {}: {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

int Server::run() {
  set_log_level(opt_.log_level);
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_.reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) {
    log(LogLevel::error, "signalfd: {}", std::strerror(errno));
    return 1;
  }

  const std::uint32_t epoch = static_cast<std::uint32_t>(now_ns() ^ (static_cast<std::uint64_t>(getpid()) << 20)) | 1u;
  try {
    region_ = std::make_unique<DaemonRegion>(opt_.cores, opt_.min_lc_cores, static_cast<std::uint32_t>(getpid()), epoch);
  } catch (const RegionError& e) {
    log(LogLevel::error, "cannot create the shared region: {}", e.what());
    return 1;
  }
  if (!open_socket()) return 1;
  log(LogLevel::info, "managing cores {} (min {} LC cores); listening on {}; allowed uids {} gids {}; region epoch {:08x}",
      skyloft::format_core_list(opt_.cores), opt_.min_lc_cores, opt_.socket_path, join_ids(opt_.allow_uids),
      join_ids(opt_.allow_gids), epoch);

  std::vector<pollfd> fds;
  std::vector<Conn*> fd_conn;   // parallel to fds: the connection of a socket entry
  std::vector<int> fd_app;      // parallel to fds: the app of a pidfd entry
  for (;;) {
    fds.clear();
    fd_conn.clear();
    fd_app.clear();
    fds.push_back({listen_fd_.get(), POLLIN, 0});
    fds.push_back({signal_fd_.get(), POLLIN, 0});
    fd_conn.resize(2, nullptr);
    fd_app.resize(2, -1);
    int timeout = -1;
    const std::int64_t now = now_ms();
    for (auto& c : conns_) {
      fds.push_back({c->fd.get(), POLLIN, 0});
      fd_conn.push_back(c.get());
      fd_app.push_back(-1);
      std::int64_t due = c->have > 0 ? c->started_ms : c->app < 0 ? c->idle_since_ms : -1;
      if (due >= 0) {
        std::int64_t left = std::max<std::int64_t>(0, due + opt_.message_timeout_ms - now);
        timeout = timeout < 0 ? static_cast<int>(left) : std::min(timeout, static_cast<int>(left));
      }
    }
    for (auto& a : apps_) {
      if (!a) continue;
      fds.push_back({a->pidfd.get(), POLLIN, 0});
      fd_conn.push_back(nullptr);
      fd_app.push_back(static_cast<int>(a->id));
    }
    int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      log(LogLevel::error, "poll: {}", std::strerror(errno));
      return 1;
    }
    if (n > 0) {
      if (fds[1].revents) {
        signalfd_siginfo si{};
        if (read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
          log(LogLevel::info, "{} received: closing {} connection(s), removing {}", strsignal(static_cast<int>(si.ssi_signo)),
              conns_.size(), opt_.socket_path);
          return 0;
        }
      }
      // App deaths first: a core freed by a dead app is republished before anyone else is served.
      for (std::size_t i = 2; i < fds.size(); ++i) {
        if (fd_app[i] >= 0 && fds[i].revents && apps_[static_cast<std::size_t>(fd_app[i])]) {
          release(static_cast<std::uint32_t>(fd_app[i]), "process exited");
        }
      }
      for (std::size_t i = 2; i < fds.size(); ++i) {
        if (fd_conn[i] != nullptr && fds[i].revents && !fd_conn[i]->dead) on_readable(*fd_conn[i]);
      }
      if (fds[0].revents) accept_peers();
    }
    expire_partial_messages();
    std::erase_if(conns_, [](const std::unique_ptr<Conn>& c) { return c->dead; });
  }
}

bool Server::peer_allowed(const Conn& c) const {
  if (std::find(opt_.allow_uids.begin(), opt_.allow_uids.end(), c.uid) != opt_.allow_uids.end()) return true;
  if (opt_.allow_gids.empty()) return false;
  if (std::find(opt_.allow_gids.begin(), opt_.allow_gids.end(), c.gid) != opt_.allow_gids.end()) return true;
  gid_t groups[256];
  socklen_t len = sizeof groups;
  if (getsockopt(c.fd.get(), SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
    for (std::size_t i = 0; i < len / sizeof(gid_t); ++i) {
      if (std::find(opt_.allow_gids.begin(), opt_.allow_gids.end(), groups[i]) != opt_.allow_gids.end()) return true;
    }
  }
  return false;
}

std::string Server::peer_name(const Conn& c) const {
  std::string s = fmt::format("peer pid {} uid {}", c.pid, c.uid);
  if (c.app >= 0 && apps_[static_cast<std::size_t>(c.app)]) {
    s += fmt::format(" (app {} '{}')", c.app, apps_[static_cast<std::size_t>(c.app)]->name);
  }
  return s;
}

void Server::accept_peers() {
  for (;;) {
    int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) log(LogLevel::warn, "accept: {}", std::strerror(errno));
      return;
    }
    auto c = std::make_unique<Conn>();
    c->fd.reset(fd);
    c->idle_since_ms = now_ms();
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      log(LogLevel::warn, "SO_PEERCRED: {}; dropping the connection", std::strerror(errno));
      continue;
    }
    c->pid = cred.pid;
    c->uid = cred.uid;
    c->gid = cred.gid;
    int pidfd = -1;
    len = sizeof pidfd;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0) c->peer_pidfd.reset(pidfd);
    Conn& ref = *c;
    conns_.push_back(std::move(c));
    if (!peer_allowed(ref)) {
      reject(ref, ErrorCode::not_allowed,
             fmt::format("uid {} (gid {}) may not use this skyloftd (allowed uids: {}; gids: {})", ref.uid, ref.gid,
                         join_ids(opt_.allow_uids), join_ids(opt_.allow_gids)));
      continue;
    }
    if (conns_.size() > kMaxConnections) {
      reject(ref, ErrorCode::internal, fmt::format("too many connections (max {})", kMaxConnections));
      continue;
    }
    log(LogLevel::debug, "connection from {}", peer_name(ref));
  }
}

void Server::on_readable(Conn& c) {
  for (int messages = 0; messages < kMessagesPerWakeup && !c.dead;) {
    const std::size_t need = c.header ? kHeaderSize + c.header->length : kHeaderSize;
    if (c.buf.size() < need) c.buf.resize(need);
    ssize_t n = recv(c.fd.get(), c.buf.data() + c.have, need - c.have, MSG_DONTWAIT);
    if (n == 0) {
      if (c.have > 0) log(LogLevel::warn, "{} closed the connection inside a message ({} of {} bytes)", peer_name(c), c.have, need);
      close_conn(c, "connection closed");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      log(LogLevel::warn, "{}: recv: {}", peer_name(c), std::strerror(errno));
      close_conn(c, "connection error");
      return;
    }
    if (c.have == 0) c.started_ms = now_ms();
    c.have += static_cast<std::size_t>(n);
    if (!c.header && c.have == kHeaderSize) {
      Parsed<Header> h = parse_header(std::span<const std::uint8_t>(c.buf.data(), kHeaderSize));
      if (!h.ok()) {
        reject(c, h.error.code, h.error.message);
        return;
      }
      c.header = h.value;
    }
    if (c.header && c.have == kHeaderSize + c.header->length) {
      Parsed<Message> m = parse_body(*c.header, std::span<const std::uint8_t>(c.buf.data() + kHeaderSize, c.header->length));
      c.have = 0;
      c.header.reset();
      c.idle_since_ms = now_ms();
      ++messages;
      if (!m.ok()) {
        reject(c, m.error.code, m.error.message);
        return;
      }
      handle(c, *m.value);
    }
  }
}

void Server::handle(Conn& c, const Message& m) {
  if (const auto* r = std::get_if<RegisterRequest>(&m)) return do_register(c, *r);
  if (const auto* r = std::get_if<UnregisterRequest>(&m)) return do_unregister(c, *r);
  if (std::holds_alternative<QueryRequest>(m)) return do_query(c);
  reject(c, ErrorCode::unexpected,
         fmt::format("skyloftd takes register, unregister and query requests, not a '{}' message", msg_type_name(type_of(m))));
}

void Server::do_register(Conn& c, const RegisterRequest& r) {
  if (c.app >= 0) {
    reject(c, ErrorCode::already_registered, fmt::format("this connection already registered app {}", c.app));
    return;
  }
  if (static_cast<pid_t>(r.pid) != c.pid) {
    reject(c, ErrorCode::pid_mismatch, fmt::format("register: pid {} is not the sender's pid {}", r.pid, c.pid));
    return;
  }
  auto slot = std::find_if(apps_.begin(), apps_.end(), [](const std::optional<App>& a) { return !a.has_value(); });
  if (slot == apps_.end()) {
    reject(c, ErrorCode::no_free_slot, fmt::format("all {} app slots are taken", kMaxApps));
    return;
  }
  Fd pidfd = c.peer_pidfd ? Fd(fcntl(c.peer_pidfd.get(), F_DUPFD_CLOEXEC, 0)) : Fd(pidfd_open_compat(c.pid));
  if (!pidfd) {
    reject(c, ErrorCode::internal, fmt::format("cannot watch pid {}: {}", c.pid, std::strerror(errno)));
    return;
  }
  const auto id = static_cast<std::uint32_t>(slot - apps_.begin());
  ControlTable& ctl = region_->control();
  App& a = slot->emplace();
  a.id = id;
  a.generation = ctl.apps[id].generation.load(std::memory_order_relaxed);
  a.pid = c.pid;
  a.app_class = r.app_class;
  a.demand = std::min<std::uint32_t>(r.demand, static_cast<std::uint32_t>(opt_.cores.size()));
  a.name = r.name;
  a.order = next_order_++;
  a.pidfd = std::move(pidfd);
  a.conn = &c;
  c.app = static_cast<int>(id);

  AppDescriptor& d = region_->app(id);
  d.pid.store(static_cast<std::uint32_t>(a.pid), std::memory_order_relaxed);
  d.run_state.store(static_cast<std::uint32_t>(AppRunState::starting), std::memory_order_relaxed);
  d.demand.store(a.demand, std::memory_order_relaxed);
  d.app_class.store(static_cast<std::uint32_t>(a.app_class), std::memory_order_relaxed);
  {
    Publication p(ctl);
    AppEntry& e = ctl.apps[id];
    e.pid.store(static_cast<std::uint32_t>(a.pid), std::memory_order_relaxed);
    e.app_class.store(static_cast<std::uint32_t>(a.app_class), std::memory_order_relaxed);
    e.demand.store(a.demand, std::memory_order_relaxed);
    e.registered_at_ns.store(now_ns(), std::memory_order_relaxed);
    for (std::size_t k = 0; k < sizeof e.name; ++k) e.name[k].store(k < a.name.size() ? a.name[k] : '\0', std::memory_order_relaxed);
    e.state.store(static_cast<std::uint32_t>(AppState::registered), std::memory_order_relaxed);
    ctl.napps.fetch_add(1, std::memory_order_relaxed);
  }
  reassign();

  RegisteredReply reply;
  reply.app_id = id;
  reply.generation = a.generation;
  reply.app_class = a.app_class;
  reply.nfds = static_cast<std::uint8_t>(registered_fd_count(kMaxApps));
  reply.max_apps = kMaxApps;
  reply.region_version = kRegionVersion;
  reply.epoch = ctl.epoch;
  std::vector<int> cores;
  for (std::uint32_t i = 0; i < managed_cores(ctl); ++i) {
    if (ctl.cores[i].eligible.load(std::memory_order_relaxed) & (1u << id)) {
      reply.cores.push_back(static_cast<std::uint16_t>(opt_.cores[i]));
      cores.push_back(opt_.cores[i]);
    }
  }
  log(LogLevel::info, "registered app {} '{}' ({}, pid {}, demand {}, generation {}): cores {}", id, a.name,
      app_class_name(a.app_class), a.pid, a.demand, a.generation, cores.empty() ? "none yet" : skyloft::format_core_list(cores));
  std::vector<int> fds = region_->registered_fds(id);
  if (std::string err = send_message(c.fd.get(), Message(reply), fds, true); !err.empty()) {
    log(LogLevel::warn, "{}: cannot send the registered reply ({}); dropping it", peer_name(c), err);
    close_conn(c, "reply failed");
  }
}

void Server::do_unregister(Conn& c, const UnregisterRequest& r) {
  if (c.app < 0 || static_cast<std::uint32_t>(c.app) != r.app_id || apps_[r.app_id]->generation != r.generation) {
    reject(c, ErrorCode::not_registered,
           fmt::format("unregister: app {} generation {} is not registered over this connection", r.app_id, r.generation));
    return;
  }
  release(r.app_id, "unregistered", true);
  if (std::string err = send_message(c.fd.get(), Message(UnregisteredReply{r.app_id, r.generation}), {}, true); !err.empty()) {
    close_conn(c, "reply failed");
  }
}

void Server::do_query(Conn& c) {
  const ControlTable& ctl = region_->control();
  StateReply s;
  s.daemon_pid = static_cast<std::uint32_t>(getpid());
  s.epoch = ctl.epoch;
  s.region_version = kRegionVersion;
  s.ncores = static_cast<std::uint16_t>(opt_.cores.size());
  s.napps = static_cast<std::uint8_t>(std::count_if(apps_.begin(), apps_.end(), [](auto& a) { return a.has_value(); }));
  s.nfds = static_cast<std::uint8_t>(state_fd_count(kMaxApps));
  std::vector<int> fds = region_->state_fds();
  if (std::string err = send_message(c.fd.get(), Message(s), fds, true); !err.empty()) close_conn(c, "reply failed");
}

void Server::reject(Conn& c, ErrorCode code, const std::string& why) {
  log(LogLevel::warn, "{}: {}: {}; closing the connection", peer_name(c), error_code_name(code), why);
  send_message(c.fd.get(), Message(make_error_reply(code, why)), {}, true);
  close_conn(c, "error reply sent");
}

void Server::close_conn(Conn& c, const char* why) {
  if (c.dead) return;
  c.dead = true;
  if (c.app >= 0) {
    std::uint32_t id = static_cast<std::uint32_t>(c.app);
    c.app = -1;
    if (apps_[id]) {
      apps_[id]->conn = nullptr;
      release(id, why);
    }
  }
  c.fd.reset();
}

void Server::release(std::uint32_t id, const char* why, bool keep_connection) {
  App a = std::move(*apps_[id]);
  apps_[id].reset();
  if (a.conn != nullptr) {
    a.conn->app = -1;
    a.conn->idle_since_ms = now_ms();
    if (!keep_connection) close_conn(*a.conn, why);
  }
  ControlTable& ctl = region_->control();
  std::uint32_t next_gen = a.generation + 1;
  if (next_gen == 0) next_gen = 1;
  {
    Publication p(ctl);
    AppEntry& e = ctl.apps[id];
    e.state.store(static_cast<std::uint32_t>(AppState::free), std::memory_order_relaxed);
    e.generation.store(next_gen, std::memory_order_relaxed);
    e.pid.store(0, std::memory_order_relaxed);
    e.demand.store(0, std::memory_order_relaxed);
    e.ncores_granted.store(0, std::memory_order_relaxed);
    for (auto& ch : e.name) ch.store('\0', std::memory_order_relaxed);
    ctl.napps.fetch_sub(1, std::memory_order_relaxed);
  }
  region_->reset_descriptor(id, next_gen);
  // Retag the id's wake words for the next generation (stale post_wake()s now fail), and kick any worker
  // of a live, unregistering app that still sleeps on one.
  CoreTable& table = region_->core_table();
  for (std::uint32_t k = 0; k < managed_cores(table); ++k) {
    std::atomic<std::uint32_t>* w = wake_word(table, k, id);
    w->store(wake_word_initial(next_gen), std::memory_order_seq_cst);
    futex_wake_shared(*w, INT32_MAX);
    table.slots[k].wanted.fetch_and(~(1u << id), std::memory_order_relaxed);  // it asks for nothing now
  }
  log(LogLevel::info, "released app {} '{}' (pid {}): {}; next generation {}", id, a.name, a.pid, why, next_gen);
  reassign();
}

void Server::reassign() {
  std::vector<const App*> live;
  for (auto& a : apps_) {
    if (a) live.push_back(&*a);
  }
  std::sort(live.begin(), live.end(), [](const App* x, const App* y) { return x->order < y->order; });
  std::vector<AppDemand> demands;
  for (const App* a : live) demands.push_back(AppDemand{a->id, a->app_class, a->demand});
  const auto ncores = static_cast<std::uint32_t>(opt_.cores.size());
  Assignment as = assign_cores(ncores, opt_.min_lc_cores, demands);

  ControlTable& ctl = region_->control();
  {
    Publication p(ctl);
    for (std::uint32_t i = 0; i < ncores; ++i) {
      const CoreAssignment& ca = as.cores[i];
      std::uint32_t grant = ca.owner >= 0 ? pack_owner(static_cast<std::uint32_t>(ca.owner),
                                                       apps_[static_cast<std::size_t>(ca.owner)]->generation)
                                          : 0;
      ctl.cores[i].grant.store(grant, std::memory_order_relaxed);
      ctl.cores[i].eligible.store(ca.eligible, std::memory_order_relaxed);
      ctl.cores[i].lc.store(ca.lc ? 1 : 0, std::memory_order_relaxed);
    }
    for (const App* a : live) {
      ctl.apps[a->id].ncores_granted.store(static_cast<std::uint32_t>(as.eligible_cores(a->id).size()), std::memory_order_relaxed);
    }
    ctl.assignments.fetch_add(1, std::memory_order_relaxed);
  }

  // Owner words that name no live app (a free core, a dead or released owner, garbage) go to the grant,
  // which is then woken. A live owner keeps the core until its worker hands it over.
  CoreTable& table = region_->core_table();
  for (std::uint32_t i = 0; i < ncores; ++i) {
    CoreSlot& s = *core_slot(table, i);
    std::uint32_t w = s.owner.load(std::memory_order_acquire);
    std::optional<OwnerRef> o = unpack_owner(w);
    bool live_owner = o && apps_[o->app_id] && (apps_[o->app_id]->generation & 0xffffffu) == o->generation24;
    if (live_owner) continue;
    std::uint32_t grant = ctl.cores[i].grant.load(std::memory_order_relaxed);
    if (w == grant) continue;
    // The owner is gone: if it died on the core, its checker count is still up. No live worker is active
    // here (only the owner's may be), so the count restarts at zero before the next owner enters.
    if (o) s.active.store(0, std::memory_order_seq_cst);
    if (!s.owner.compare_exchange_strong(w, grant, std::memory_order_seq_cst)) continue;  // a worker moved it
    s.reclaims.fetch_add(1, std::memory_order_relaxed);
    if (std::optional<OwnerRef> g = unpack_owner(grant)) {
      std::atomic<std::uint32_t>& word = s.wake[g->app_id];
      if (post_wake(word, apps_[g->app_id]->generation)) futex_wake_shared(word, INT32_MAX);
      log(LogLevel::debug, "core {}: owner {} -> app {}", opt_.cores[i], w, g->app_id);
    }
  }
}

void Server::expire_partial_messages() {
  const std::int64_t now = now_ms();
  for (auto& c : conns_) {
    if (c->dead) continue;
    if (c->have > 0 && now >= c->started_ms + opt_.message_timeout_ms) {
      std::size_t need = c->header ? kHeaderSize + c->header->length : kHeaderSize;
      reject(*c, ErrorCode::timeout,
             fmt::format("incomplete message: {} of {} bytes after {} ms", c->have, need, opt_.message_timeout_ms));
    } else if (c->have == 0 && c->app < 0 && now >= c->idle_since_ms + opt_.message_timeout_ms) {
      reject(*c, ErrorCode::timeout, fmt::format("no request within {} ms", opt_.message_timeout_ms));
    }
  }
}

}  // namespace skyloftd
