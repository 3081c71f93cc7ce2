// shm_region.hpp - creating the shared region's memfds (daemon side) and mapping received ones (app and
// skyloft-stat side), with every check that keeps a bad file from hurting the mapper.
//
// Creation: memfd_create(MFD_ALLOW_SEALING | MFD_CLOEXEC), ftruncate to the layout's size, mode 0600, then
// F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, so no process can ever change the size (a shrunk file would
// turn an access through a live mapping into SIGBUS). A second, read-only file description of the same
// file is opened for the apps that may only read it (see the protection rule in shm_layout.hpp).
//
// Mapping a received fd checks, before the first access: the size equals the layout's size, the size seals
// are in place, the header's magic, version, size and maxima match this build. Errors throw RegionError
// with a message naming the file and the mismatch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "multiapp/shm_layout.hpp"

namespace skyloft::multiapp {

class RegionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd();
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// An owned MAP_SHARED mapping.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, std::size_t size) : addr_(addr), size_(size) {}
  Mapping(Mapping&& o) noexcept : addr_(o.addr_), size_(o.size_) { o.addr_ = nullptr; o.size_ = 0; }
  Mapping& operator=(Mapping&& o) noexcept;
  ~Mapping();
  void* get() const { return addr_; }
  std::size_t size() const { return size_; }
  template <class T>
  T* as() const { return static_cast<T*>(addr_); }

 private:
  void* addr_ = nullptr;
  std::size_t size_ = 0;
};

// One memfd of the region as the daemon holds it.
struct SharedFile {
  Fd rw;          // read-write description (the daemon; the owning app for a descriptor; apps for the core table)
  Fd ro;          // read-only description for everyone else
  Mapping map;    // the daemon's read-write mapping
};

// Creates a sealed memfd of `size` bytes named `name` (shows in /proc/PID/fd as memfd:name). Throws RegionError.
SharedFile create_shared_file(const std::string& name, std::size_t size);

// Maps a received fd after checking its size and seals. `writable`: PROT_READ|PROT_WRITE, else PROT_READ.
Mapping map_received_file(int fd, std::size_t size, bool writable, const std::string& what);

// The daemon's region: all files, mapped read-write.
class DaemonRegion {
 public:
  // cpus: the managed core ids (1 .. kMaxManagedCores of them). epoch: a value that differs between runs.
  DaemonRegion(const std::vector<int>& cpus, std::uint32_t min_lc_cores, std::uint32_t daemon_pid, std::uint32_t epoch);
  ControlTable& control() { return *control_.map.as<ControlTable>(); }
  CoreTable& core_table() { return *cores_.map.as<CoreTable>(); }
  AppDescriptor& app(std::uint32_t id) { return *apps_[id].map.as<AppDescriptor>(); }
  // The fds a `registered` reply carries for app `id` (order: shm_layout.hpp), and a `state` reply's fds.
  std::vector<int> registered_fds(std::uint32_t id) const;
  std::vector<int> state_fds() const;
  // Clears app `id`'s descriptor and writes its header for `generation`.
  void reset_descriptor(std::uint32_t id, std::uint32_t generation);

 private:
  SharedFile control_, cores_;
  SharedFile apps_[kMaxApps];
};

// An app's (or skyloft-stat's) view of the region, built from the fds of a reply.
class MappedRegion {
 public:
  MappedRegion() = default;
  // A `registered` reply's fds (ownership passes to the region; they are closed after mapping).
  static MappedRegion from_registered(std::vector<Fd> fds, std::uint32_t self_id);
  // A `state` reply's fds: everything read-only.
  static MappedRegion from_state(std::vector<Fd> fds);

  const ControlTable& control() const { return *control_.as<const ControlTable>(); }
  const CoreTable& core_table() const { return *cores_.as<const CoreTable>(); }
  // Writable core table (registered apps only; nullptr for a read-only view).
  CoreTable* core_table_rw() const { return cores_writable_ ? cores_.as<CoreTable>() : nullptr; }
  // This app's own descriptor (registered apps only; nullptr otherwise).
  AppDescriptor* self() const { return self_.get() ? self_.as<AppDescriptor>() : nullptr; }
  // Any app's descriptor, read-only; nullptr for an id out of range.
  const AppDescriptor* app(std::uint32_t id) const {
    return id < kMaxApps && apps_[id].get() ? apps_[id].as<const AppDescriptor>() : nullptr;
  }
  bool mapped() const { return control_.get() != nullptr; }

 private:
  Mapping control_, cores_, self_;
  Mapping apps_[kMaxApps];
  bool cores_writable_ = false;
};

}  // namespace skyloft::multiapp
