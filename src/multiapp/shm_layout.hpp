// shm_layout.hpp - the region that skyloftd shares with the apps: fixed-size tables, versioned, and the
// bounds-checked accessors through which every index read from shared memory must pass.
//
// The region is several memfds, not one, because the kernel enforces write permission per file, not
// per page of one file:
//
//   file          | size        | written by                 | mapped by the apps
//   --------------+-------------+----------------------------+------------------------------------------
//   control       | 4 KiB       | the daemon only            | read-only (every app, skyloft-stat)
//   core table    | 12 KiB      | every registered app       | read-write (registered apps), read-only
//                 |             | (handoffs) and the daemon  | (skyloft-stat)
//   app i (x16)   | 8 KiB each  | app i and the daemon       | read-write by app i, read-only by others
//
// The protection rule "an app cannot write another app's descriptor": app i receives a read-write file
// description only for its own descriptor file; every other descriptor (and the control file) comes as a
// read-only file description (the daemon reopens its memfd O_RDONLY through /proc/self/fd). A MAP_SHARED
// mapping of a read-only description can be neither mapped nor mprotect()ed writable, and the memfd inodes
// are mode 0600 owned by the daemon, so an app of another uid cannot reopen one for writing either. (Apps
// running under the daemon's own uid could still reopen a description for writing, or ptrace each other;
// against them the rule catches stray writes, not malice.)
//
// What each file holds and who may trust it:
//   - control: the authority. The directory of apps (state, generation, pid, class, name) and the daemon's
//     core assignment (per core: the granted owner, the set of apps eligible to run a worker there).
//     Published under a sequence lock: `seq` is odd while the daemon writes, readers retry.
//   - core table: the handoff words of the Single Binding Rule. Per core: the owner word (the app whose
//     worker runs or is being handed the core), one wake word per app (a SHARED futex: FUTEX_WAIT without
//     FUTEX_PRIVATE_FLAG, so the kernel keys it by the page, not by the address space) and the checker
//     counter `active` (workers running on the core right now, which must never exceed 1).
//   - app descriptor: what the app reports: its state, live tasks, per-core run-queue length (demand),
//     switches in and out, preemptions, CPU time. Its identity fields are a copy; the control directory's
//     entry is the one to believe (an app can scribble over its own descriptor, not over the directory).
//
// Words that pack an app id carry its generation as well, so a wake-up or a handoff aimed at an app that
// has since died can never reach the next app that gets the same id:
//   owner word = (generation mod 2^24) << 8 | (app id + 1); 0 means "no owner".
//   wake word  = (generation mod 2^8) << 24 | a 24-bit sequence; the daemon resets a slot's wake words to
//                the new generation's tag when it reuses the id, and post_wake() refuses a stale tag.
//
// Bounds: every count and index read from shared memory (ncores, an owner's app id, a core id) is checked
// here against the compile-time maxima before it indexes anything, so a corrupted entry yields "no such
// app/core" rather than a wild access.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "multiapp/protocol.hpp"

namespace skyloft::multiapp {

inline constexpr std::uint32_t kRegionVersion = 1;
inline constexpr std::uint64_t kControlMagic = 0x4c52544e43594b53;  // "SKYCNTRL"
inline constexpr std::uint64_t kCoreTableMagic = 0x5345524f43594b53;  // "SKYCORES"
inline constexpr std::uint64_t kAppMagic = 0x5050415f59594b53;        // "SKYY_APP"

// Slot states in the control directory (the daemon writes them).
enum class AppState : std::uint32_t {
  free = 0,        // never used, or released; generation already bumped for the next owner
  registered = 1,  // the daemon gave the slot to a live process
};

// Lifecycle the app reports in its own descriptor.
enum class AppRunState : std::uint32_t { none = 0, starting = 1, running = 2, exiting = 3 };

// ---------------------------------------------------------------------------------------------------------
// control file (daemon-written)

struct alignas(64) AppEntry {
  std::atomic<std::uint32_t> state;       // AppState
  std::atomic<std::uint32_t> generation;  // 1 at first use, bumped each time the slot is released
  std::atomic<std::uint32_t> pid;
  std::atomic<std::uint32_t> app_class;   // AppClass
  std::atomic<std::uint32_t> demand;      // cores requested at registration
  std::atomic<std::uint32_t> ncores_granted;
  std::atomic<std::uint64_t> registered_at_ns;  // CLOCK_MONOTONIC
  std::atomic<char> name[kMaxAppName + 8];  // NUL-terminated; written under the sequence lock
};

struct alignas(16) CoreGrant {
  std::atomic<std::uint32_t> cpu;       // the core id (fixed when the region is created)
  std::atomic<std::uint32_t> grant;     // owner word (packed) of the app the daemon gives the core to; 0: none
  std::atomic<std::uint32_t> eligible;  // bit i: app i may keep a worker on this core
  std::atomic<std::uint32_t> lc;        // 1: reserved for latency-critical apps by the current assignment
};

struct ControlTable {
  std::uint64_t magic;           // kControlMagic; the header fields are written once, before any app maps
  std::uint32_t version;         // kRegionVersion
  std::uint32_t size;            // sizeof(ControlTable)
  std::uint32_t max_apps;        // kMaxApps
  std::uint32_t max_cores;       // kMaxManagedCores
  std::uint32_t ncores;          // managed cores (<= max_cores)
  std::uint32_t daemon_pid;
  std::uint32_t epoch;           // differs between daemon runs: a restarted daemon makes a new region
  std::uint32_t min_lc_cores;
  std::atomic<std::uint32_t> seq;          // sequence lock: odd while the daemon publishes
  std::atomic<std::uint32_t> napps;        // registered apps
  std::atomic<std::uint64_t> assignments;  // publications so far
  AppEntry apps[kMaxApps];
  CoreGrant cores[kMaxManagedCores];
};

// ---------------------------------------------------------------------------------------------------------
// core table (handoff words; apps and daemon write)

struct alignas(64) CoreSlot {
  std::atomic<std::uint32_t> owner;       // packed owner word; written by the worker handing the core over,
                                          // and by the daemon when the owner dies
  std::atomic<std::uint32_t> active;      // checker: workers running here now; each worker increments on
                                          // entering the core and decrements on leaving
  std::atomic<std::uint32_t> violations;  // increments that found another worker active
  std::atomic<std::uint32_t> wanted;      // bit i: app i has work for this core and asks for it. Set by
                                          // app i (its worker, or a thread kicking it: app_core.hpp O3k;
                                          // cleared when its worker got the core); any app may
                                          // clear a bit naming no live, eligible app; the daemon clears a
                                          // released app's bit
  std::atomic<std::uint64_t> handoffs;    // owner changes made by workers
  std::atomic<std::uint64_t> reclaims;    // owner changes made by the daemon (dead owner)
  std::atomic<std::uint32_t> preempt;     // the preemption word of whichever app's worker runs tasks here
                                          // (app_core.hpp O6): raised by that app's mechanisms and by any
                                          // app asking for the core, cleared by the running worker. On the
                                          // line of `wanted`: a kicker writes both. Was padding (zero) in
                                          // earlier builds of version 1, which never read it.
  std::uint8_t pad_[64 - 36];
  std::atomic<std::uint32_t> wake[kMaxApps];  // per-(core, app) shared futex words, see post_wake()
};

struct CoreTable {
  std::uint64_t magic;  // kCoreTableMagic
  std::uint32_t version;
  std::uint32_t size;
  std::uint32_t ncores;
  std::uint32_t epoch;
  std::uint8_t pad_[64 - 24];
  CoreSlot slots[kMaxManagedCores];
};

// ---------------------------------------------------------------------------------------------------------
// app descriptor (that app and the daemon write)

struct alignas(64) AppCoreStats {
  std::atomic<std::uint32_t> runqueue_len;  // tasks queued for this core: the app's demand for it
  std::atomic<std::uint32_t> running;       // 1 while this app's worker is active on the core
  std::atomic<std::uint64_t> switches_in;   // times this app's worker got the core
  std::atomic<std::uint64_t> switches_out;  // times it gave the core away
  std::atomic<std::uint64_t> preemptions;   // task preemptions on this core
  std::atomic<std::uint64_t> cpu_ns;        // time this app's worker held the core
  std::atomic<std::uint32_t> worker_tid;    // the kernel thread driving this app's worker for the core
                                            // (the target of a revocation signal); 0: none yet
  std::atomic<std::uint64_t> kick_nudges;   // O3k: kicks that interrupted the core's owner at once
                                            // (any thread of this app adds)
  std::atomic<std::uint64_t> kick_flag_handovers;  // O6: of those, the ones the owner answered through
                                            // the raised word within the grace, with no signal sent
};

struct AppDescriptor {
  std::uint64_t magic;  // kAppMagic (the daemon writes the header when it resets the slot)
  std::uint32_t version;
  std::uint32_t size;
  std::atomic<std::uint32_t> app_id;      // copies of the directory entry (do not trust: the app may write)
  std::atomic<std::uint32_t> generation;
  std::atomic<std::uint32_t> pid;
  std::atomic<std::uint32_t> run_state;   // AppRunState, reported by the app
  std::atomic<std::uint64_t> tasks;       // live tasks
  std::atomic<std::uint64_t> heartbeat_ns;  // CLOCK_MONOTONIC of the last report
  std::atomic<std::uint32_t> demand;      // cores the app wants now
  std::atomic<std::uint32_t> app_class;   // AppClass (copy, written by the daemon at registration)
  // How another app asks this app's worker to give a core back: the preemption signal and the token its
  // handler accepts (a signal without it goes to the program's own handler). Written by the app at start.
  std::atomic<std::uint64_t> preempt_token;
  std::atomic<std::uint32_t> preempt_signal;
  std::uint8_t pad_[128 - 68];
  AppCoreStats cores[kMaxManagedCores];
};

// File sizes: page multiples, fixed by the version.
inline constexpr std::size_t kPageSize = 4096;
constexpr std::size_t round_to_page(std::size_t n) { return (n + kPageSize - 1) / kPageSize * kPageSize; }
inline constexpr std::size_t kControlFileSize = round_to_page(sizeof(ControlTable));
inline constexpr std::size_t kCoreTableFileSize = round_to_page(sizeof(CoreTable));
inline constexpr std::size_t kAppFileSize = round_to_page(sizeof(AppDescriptor));

static_assert(std::atomic<std::uint32_t>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free,
              "shared-memory atomics must be lock-free (address-free across processes)");
static_assert(sizeof(std::atomic<std::uint32_t>) == 4, "futex words are 32 bits");
static_assert(offsetof(ControlTable, apps) == 64);
static_assert(sizeof(AppEntry) == 128);
static_assert(offsetof(CoreSlot, wake) == 64 && sizeof(CoreSlot) == 128);
static_assert(offsetof(CoreTable, slots) == 64);
static_assert(offsetof(AppDescriptor, cores) == 128 && sizeof(AppCoreStats) == 64);
static_assert(offsetof(AppDescriptor, preempt_token) == 56 && offsetof(CoreSlot, wanted) == 12 &&
              offsetof(CoreSlot, preempt) == 32);
static_assert(kControlFileSize == 4096 && kCoreTableFileSize == 12288 && kAppFileSize == 8192,
              "changing a size changes the layout: bump kRegionVersion");
static_assert(kMaxApps <= 32, "CoreGrant::eligible is a 32-bit mask");

// File descriptor order in a `registered` reply: control (ro), core table (rw), own descriptor (rw), then
// every app's descriptor (ro, index = app id). A `state` reply (skyloft-stat) carries control (ro), core
// table (ro), then every app's descriptor (ro).
inline constexpr std::uint32_t kFdControl = 0;
inline constexpr std::uint32_t kFdCoreTable = 1;
inline constexpr std::uint32_t kFdSelf = 2;
inline constexpr std::uint32_t kRegisteredFdAppsBase = 3;
inline constexpr std::uint32_t kStateFdAppsBase = 2;
constexpr std::uint32_t registered_fd_count(std::uint32_t max_apps) { return kRegisteredFdAppsBase + max_apps; }
constexpr std::uint32_t state_fd_count(std::uint32_t max_apps) { return kStateFdAppsBase + max_apps; }

// ---------------------------------------------------------------------------------------------------------
// packed words

struct OwnerRef {
  std::uint32_t app_id;
  std::uint32_t generation24;  // generation mod 2^24
};

constexpr std::uint32_t pack_owner(std::uint32_t app_id, std::uint32_t generation) {
  return ((generation & 0xffffffu) << 8) | ((app_id + 1) & 0xffu);
}
// nullopt for "no owner" and for an app id out of range (a corrupted word).
constexpr std::optional<OwnerRef> unpack_owner(std::uint32_t word) {
  std::uint32_t id1 = word & 0xffu;
  if (id1 == 0 || id1 > kMaxApps) return std::nullopt;
  return OwnerRef{id1 - 1, word >> 8};
}
constexpr bool owner_is(std::uint32_t word, std::uint32_t app_id, std::uint32_t generation) {
  return word != 0 && word == pack_owner(app_id, generation);
}

constexpr std::uint32_t wake_tag(std::uint32_t generation) { return (generation & 0xffu) << 24; }
constexpr std::uint32_t wake_word_initial(std::uint32_t generation) { return wake_tag(generation); }

// Posts a wake-up to (core, app) for the app's given generation: bumps the word's sequence unless the tag
// shows the slot now belongs to another generation. Returns false (nothing posted) for a stale target. The
// caller then wakes sleepers with futex_wake_shared(word).
bool post_wake(std::atomic<std::uint32_t>& word, std::uint32_t generation) noexcept;

// Shared (not FUTEX_PRIVATE) futex operations on a word in a MAP_SHARED mapping. wait returns when the word
// differs from `expected`, on a wake-up, or after timeout_ns (0: no timeout); spurious returns happen.
void futex_wait_shared(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t timeout_ns) noexcept;
int futex_wake_shared(const std::atomic<std::uint32_t>& word, int count) noexcept;

// ---------------------------------------------------------------------------------------------------------
// bounds-checked accessors: the only way to index a shared table

// Managed cores as the control header says, clamped to what the layout holds.
inline std::uint32_t managed_cores(const ControlTable& c) {
  std::uint32_t n = c.ncores;
  return n <= kMaxManagedCores ? n : 0;  // a corrupt count means "nothing managed", never an overrun
}
inline std::uint32_t managed_cores(const CoreTable& t) {
  std::uint32_t n = t.ncores;
  return n <= kMaxManagedCores ? n : 0;
}

inline const AppEntry* app_entry(const ControlTable& c, std::uint32_t app_id) {
  return app_id < kMaxApps ? &c.apps[app_id] : nullptr;
}
inline AppEntry* app_entry(ControlTable& c, std::uint32_t app_id) {
  return app_id < kMaxApps ? &c.apps[app_id] : nullptr;
}
inline const CoreGrant* core_grant(const ControlTable& c, std::uint32_t index) {
  return index < managed_cores(c) ? &c.cores[index] : nullptr;
}
inline CoreGrant* core_grant(ControlTable& c, std::uint32_t index) {
  return index < managed_cores(c) ? &c.cores[index] : nullptr;
}
inline CoreSlot* core_slot(CoreTable& t, std::uint32_t index) {
  return index < managed_cores(t) ? &t.slots[index] : nullptr;
}
inline const CoreSlot* core_slot(const CoreTable& t, std::uint32_t index) {
  return index < managed_cores(t) ? &t.slots[index] : nullptr;
}
inline std::atomic<std::uint32_t>* wake_word(CoreTable& t, std::uint32_t core_index, std::uint32_t app_id) {
  CoreSlot* s = core_slot(t, core_index);
  return s != nullptr && app_id < kMaxApps ? &s->wake[app_id] : nullptr;
}
inline const AppCoreStats* app_core_stats(const AppDescriptor& d, std::uint32_t core_index) {
  return core_index < kMaxManagedCores ? &d.cores[core_index] : nullptr;
}
inline AppCoreStats* app_core_stats(AppDescriptor& d, std::uint32_t core_index) {
  return core_index < kMaxManagedCores ? &d.cores[core_index] : nullptr;
}
// The managed-core index of a core id, if the daemon manages it.
std::optional<std::uint32_t> core_index_of(const ControlTable& c, std::uint32_t cpu);

// The Single Binding Rule checker. A worker calls checker_enter() when it starts running on the core and
// checker_leave() before it gives the core away; enter returns false (and counts a violation) if another
// worker was already active there.
bool checker_enter(CoreSlot& slot) noexcept;
void checker_leave(CoreSlot& slot) noexcept;

// A consistent copy of the control table's directory and assignment (retries the sequence lock).
struct AppSnapshot {
  AppState state = AppState::free;
  std::uint32_t generation = 0;
  std::uint32_t pid = 0;
  AppClass app_class = AppClass::be;
  std::uint32_t demand = 0;
  std::uint32_t ncores_granted = 0;
  char name[kMaxAppName + 1] = {};
};
struct CoreSnapshot {
  std::uint32_t cpu = 0;
  std::uint32_t grant = 0;
  std::uint32_t eligible = 0;
  bool lc = false;
};
struct ControlSnapshot {
  std::uint32_t ncores = 0;
  std::uint32_t napps = 0;
  std::uint64_t assignments = 0;
  AppSnapshot apps[kMaxApps];
  CoreSnapshot cores[kMaxManagedCores];
};
// Returns false if no consistent copy was seen within `attempts` tries (the daemon died mid-publication).
bool read_control(const ControlTable& c, ControlSnapshot& out, int attempts = 1000) noexcept;

}  // namespace skyloft::multiapp
