// shm_region.cpp - memfd creation and sealing (daemon), checked mapping of received fds (apps, stat).
#include "multiapp/shm_region.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include <fmt/format.h>

namespace skyloft::multiapp {
namespace {

constexpr int kSizeSeals = F_SEAL_SHRINK | F_SEAL_GROW;

[[noreturn]] void fail_errno(const std::string& what) {
  throw RegionError(fmt::format("{}: {}", what, std::strerror(errno)));
}

void* map_fd(int fd, std::size_t size, bool writable, const std::string& what) {
  void* p = mmap(nullptr, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) fail_errno(fmt::format("mapping {}", what));
  return p;
}

void check_header(std::uint64_t magic, std::uint64_t want_magic, std::uint32_t version, std::uint32_t size,
                  std::size_t want_size, const std::string& what) {
  if (magic != want_magic) throw RegionError(fmt::format("{}: bad magic 0x{:016x} (not a skyloft region)", what, magic));
  if (version != kRegionVersion) {
    throw RegionError(fmt::format("{}: region version {} (this build reads {})", what, version, kRegionVersion));
  }
  if (size != want_size) throw RegionError(fmt::format("{}: header says {} bytes, layout has {}", what, size, want_size));
}

}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}
Fd::~Fd() { reset(); }
void Fd::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    if (addr_ != nullptr) munmap(addr_, size_);
    addr_ = o.addr_;
    size_ = o.size_;
    o.addr_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}
Mapping::~Mapping() {
  if (addr_ != nullptr) munmap(addr_, size_);
}

SharedFile create_shared_file(const std::string& name, std::size_t size) {
  SharedFile f;
  f.rw.reset(memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!f.rw) fail_errno(fmt::format("memfd_create({})", name));
  if (ftruncate(f.rw.get(), static_cast<off_t>(size)) != 0) fail_errno(fmt::format("ftruncate({})", name));
  if (fchmod(f.rw.get(), 0600) != 0) fail_errno(fmt::format("fchmod({})", name));
  if (fcntl(f.rw.get(), F_ADD_SEALS, kSizeSeals | F_SEAL_SEAL) != 0) fail_errno(fmt::format("sealing {}", name));
  // A read-only description of the same file for the apps that may only read it.
  std::string self_path = fmt::format("/proc/self/fd/{}", f.rw.get());
  f.ro.reset(open(self_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f.ro) fail_errno(fmt::format("reopening {} read-only ({})", name, self_path));
  f.map = Mapping(map_fd(f.rw.get(), size, true, name), size);
  return f;
}

Mapping map_received_file(int fd, std::size_t size, bool writable, const std::string& what) {
  struct stat st {};
  if (fstat(fd, &st) != 0) fail_errno(fmt::format("fstat of {}", what));
  if (!S_ISREG(st.st_mode) || static_cast<std::size_t>(st.st_size) != size) {
    throw RegionError(fmt::format("{}: file of {} bytes, expected {} (daemon of another version?)", what,
                                  static_cast<long long>(st.st_size), size));
  }
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) fail_errno(fmt::format("{}: F_GET_SEALS (not a memfd?)", what));
  if ((seals & kSizeSeals) != kSizeSeals) {
    throw RegionError(fmt::format("{}: size not sealed (seals 0x{:x}); refusing to map a file that could shrink", what, seals));
  }
  return Mapping(map_fd(fd, size, writable, what), size);
}

DaemonRegion::DaemonRegion(const std::vector<int>& cpus, std::uint32_t min_lc_cores, std::uint32_t daemon_pid,
                           std::uint32_t epoch) {
  if (cpus.empty() || cpus.size() > kMaxManagedCores) {
    throw RegionError(fmt::format("{} managed cores (allowed 1..{})", cpus.size(), kMaxManagedCores));
  }
  control_ = create_shared_file("skyloft-control", kControlFileSize);
  cores_ = create_shared_file("skyloft-cores", kCoreTableFileSize);
  for (std::uint32_t i = 0; i < kMaxApps; ++i) apps_[i] = create_shared_file(fmt::format("skyloft-app{}", i), kAppFileSize);

  // The files are fresh (zero-filled) and not yet shared: construct the tables in place.
  ControlTable* c = new (control_.map.get()) ControlTable{};
  c->magic = kControlMagic;
  c->version = kRegionVersion;
  c->size = sizeof(ControlTable);
  c->max_apps = kMaxApps;
  c->max_cores = kMaxManagedCores;
  c->ncores = static_cast<std::uint32_t>(cpus.size());
  c->daemon_pid = daemon_pid;
  c->epoch = epoch;
  c->min_lc_cores = min_lc_cores;
  for (std::size_t i = 0; i < cpus.size(); ++i) c->cores[i].cpu.store(static_cast<std::uint32_t>(cpus[i]));

  CoreTable* t = new (cores_.map.get()) CoreTable{};
  t->magic = kCoreTableMagic;
  t->version = kRegionVersion;
  t->size = sizeof(CoreTable);
  t->ncores = static_cast<std::uint32_t>(cpus.size());
  t->epoch = epoch;
  for (std::uint32_t i = 0; i < kMaxApps; ++i) {
    c->apps[i].generation.store(1);
    new (apps_[i].map.get()) AppDescriptor{};
    reset_descriptor(i, 1);
    for (std::size_t k = 0; k < cpus.size(); ++k) t->slots[k].wake[i].store(wake_word_initial(1));
  }
}

std::vector<int> DaemonRegion::registered_fds(std::uint32_t id) const {
  std::vector<int> fds = {control_.ro.get(), cores_.rw.get(), apps_[id].rw.get()};
  for (const SharedFile& a : apps_) fds.push_back(a.ro.get());
  return fds;
}

std::vector<int> DaemonRegion::state_fds() const {
  std::vector<int> fds = {control_.ro.get(), cores_.ro.get()};
  for (const SharedFile& a : apps_) fds.push_back(a.ro.get());
  return fds;
}

void DaemonRegion::reset_descriptor(std::uint32_t id, std::uint32_t generation) {
  AppDescriptor& d = app(id);
  d.run_state.store(static_cast<std::uint32_t>(AppRunState::none), std::memory_order_relaxed);
  d.tasks.store(0, std::memory_order_relaxed);
  d.heartbeat_ns.store(0, std::memory_order_relaxed);
  d.demand.store(0, std::memory_order_relaxed);
  d.app_class.store(0, std::memory_order_relaxed);
  d.pid.store(0, std::memory_order_relaxed);
  for (AppCoreStats& s : d.cores) {
    s.runqueue_len.store(0, std::memory_order_relaxed);
    s.running.store(0, std::memory_order_relaxed);
    s.switches_in.store(0, std::memory_order_relaxed);
    s.switches_out.store(0, std::memory_order_relaxed);
    s.preemptions.store(0, std::memory_order_relaxed);
    s.cpu_ns.store(0, std::memory_order_relaxed);
  }
  d.magic = kAppMagic;
  d.version = kRegionVersion;
  d.size = sizeof(AppDescriptor);
  d.app_id.store(id, std::memory_order_relaxed);
  d.generation.store(generation, std::memory_order_release);
}

MappedRegion MappedRegion::from_registered(std::vector<Fd> fds, std::uint32_t self_id) {
  if (fds.size() != registered_fd_count(kMaxApps)) {
    throw RegionError(fmt::format("registered reply carried {} file descriptors, expected {}", fds.size(),
                                  registered_fd_count(kMaxApps)));
  }
  if (self_id >= kMaxApps) throw RegionError(fmt::format("app id {} out of range", self_id));
  MappedRegion r;
  r.control_ = map_received_file(fds[kFdControl].get(), kControlFileSize, false, "control file");
  r.cores_ = map_received_file(fds[kFdCoreTable].get(), kCoreTableFileSize, true, "core table");
  r.cores_writable_ = true;
  r.self_ = map_received_file(fds[kFdSelf].get(), kAppFileSize, true, fmt::format("own descriptor (app {})", self_id));
  for (std::uint32_t i = 0; i < kMaxApps; ++i) {
    r.apps_[i] = map_received_file(fds[kRegisteredFdAppsBase + i].get(), kAppFileSize, false, fmt::format("descriptor of app {}", i));
  }
  const ControlTable& c = r.control();
  check_header(c.magic, kControlMagic, c.version, c.size, sizeof(ControlTable), "control file");
  if (c.max_apps != kMaxApps || c.max_cores != kMaxManagedCores || c.ncores == 0 || c.ncores > kMaxManagedCores) {
    throw RegionError(fmt::format("control file: max_apps {} max_cores {} ncores {} (this build: {} / {})", c.max_apps,
                                  c.max_cores, c.ncores, kMaxApps, kMaxManagedCores));
  }
  const CoreTable& t = r.core_table();
  check_header(t.magic, kCoreTableMagic, t.version, t.size, sizeof(CoreTable), "core table");
  if (t.ncores != c.ncores) throw RegionError(fmt::format("core table has {} cores, control {}", t.ncores, c.ncores));
  for (std::uint32_t i = 0; i < kMaxApps; ++i) {
    const AppDescriptor& d = *r.app(i);
    check_header(d.magic, kAppMagic, d.version, d.size, sizeof(AppDescriptor), fmt::format("descriptor of app {}", i));
  }
  return r;
}

MappedRegion MappedRegion::from_state(std::vector<Fd> fds) {
  if (fds.size() != state_fd_count(kMaxApps)) {
    throw RegionError(fmt::format("state reply carried {} file descriptors, expected {}", fds.size(), state_fd_count(kMaxApps)));
  }
  MappedRegion r;
  r.control_ = map_received_file(fds[kFdControl].get(), kControlFileSize, false, "control file");
  r.cores_ = map_received_file(fds[kFdCoreTable].get(), kCoreTableFileSize, false, "core table");
  for (std::uint32_t i = 0; i < kMaxApps; ++i) {
    r.apps_[i] = map_received_file(fds[kStateFdAppsBase + i].get(), kAppFileSize, false, fmt::format("descriptor of app {}", i));
  }
  const ControlTable& c = r.control();
  check_header(c.magic, kControlMagic, c.version, c.size, sizeof(ControlTable), "control file");
  if (c.ncores == 0 || c.ncores > kMaxManagedCores) throw RegionError(fmt::format("control file: ncores {}", c.ncores));
  const CoreTable& t = r.core_table();
  check_header(t.magic, kCoreTableMagic, t.version, t.size, sizeof(CoreTable), "core table");
  return r;
}

}  // namespace skyloft::multiapp
