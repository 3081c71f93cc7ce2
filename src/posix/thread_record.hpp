// thread_record.hpp - what a pthread_t points at under the POSIX layer: one record per program thread.
//
// Every program thread (main included) is a skyloft task, and its pthread_t is the address of its
// ThreadRecord, found from inside the task in one load (this_task::local()). Plain kernel threads (the
// runtime's own, or code running before the runtime starts) keep glibc's pthread_t; for them the layer
// keeps a thread_local record that only holds their key values.
//
// Lifetime: two references, the task's and the join right's. The task drops its reference after it
// published `done`; the join right is dropped by pthread_join (after it saw `done`) or by pthread_detach
// (or at creation, for a detached thread). The last one deletes the record.
//
// Who writes what:
//   start, arg, stack_*    the creator before the task starts, then the task at its start (read-only after)
//   retval                 the task before it publishes done (the joiner reads it after seeing done)
//   done                   the task (0 -> 1, seq_cst exchange, then wake_address_all); joiners wait on it
//   join_right             CAS by joiners and detachers (kJoinable -> kJoining/kDetached)
//   name                   pthread_setname_np (any thread; a racing getname may see a torn name, as natively)
//   keys                   the thread itself only
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace skyloft::posix {

// The first word of a record. glibc's struct pthread begins with a pointer to itself, so a pthread_t that
// does not hold this word is one of glibc's.
inline constexpr std::uint64_t kRecordMagic = 0x534b594c4f465454ull;  // "SKYLOFTT"

inline constexpr std::uint32_t kJoinable = 0;
inline constexpr std::uint32_t kJoining = 1;
inline constexpr std::uint32_t kDetached = 2;

// Key values: 32 blocks of 32 slots (PTHREAD_KEYS_MAX = 1024), a block allocated on its first set.
inline constexpr std::size_t kKeyBlock = 32;
inline constexpr std::size_t kKeyBlocks = PTHREAD_KEYS_MAX / kKeyBlock;
struct KeySlot {
  std::uint64_t seq = 0;  // the key's generation when the value was set; a stale generation reads as null
  void* value = nullptr;
};

struct ThreadRecord {
  std::uint64_t magic = kRecordMagic;
  void* (*start)(void*) = nullptr;
  void* arg = nullptr;
  void* retval = nullptr;
  std::atomic<std::uint32_t> done{0};
  std::atomic<std::uint32_t> join_right{kJoinable};
  std::atomic<std::uint32_t> refs{2};
  bool is_task = true;        // false: the thread_local record of a plain kernel thread
  void* stack_lo = nullptr;   // the task's usable stack, for pthread_getattr_np
  std::size_t stack_size = 0;
  char name[16] = {};
  KeySlot* keys[kKeyBlocks] = {};

  ~ThreadRecord();
};

// The caller's record: its task's, or its plain thread's thread_local one (made on first use). Never null.
ThreadRecord* current_record() noexcept;
// The record behind a pthread_t, or nullptr when it is one of glibc's.
inline ThreadRecord* record_of(pthread_t t) noexcept {
  auto* r = reinterpret_cast<ThreadRecord*>(t);
  return r != nullptr && r->magic == kRecordMagic ? r : nullptr;
}
// Drops one reference; the last deletes the record.
void record_release(ThreadRecord* r) noexcept;

// An identity for lock owners: the task's record, or glibc's pthread_t on a plain thread.
std::uintptr_t self_identity() noexcept;

// A program thread's last steps, on its task: key destructors, then `done` published and joiners woken,
// then the task's reference dropped. Runs when the start routine returns and while pthread_exit unwinds.
void finish_thread(ThreadRecord* r);

// Runs the destructors of the calling thread's key values (up to PTHREAD_DESTRUCTOR_ITERATIONS rounds).
void run_key_destructors(ThreadRecord* r);

// Starts the runtime on first need (main's start, or a thread created before it); exits with a message
// when the configuration is bad.
void ensure_runtime() noexcept;

// Says once on stderr why a call is refused ("skyloft: <what> is not supported ...").
void refuse_once(const char* what, const char* why) noexcept;

// True (after saying so once) when the attribute asks for a process-shared object: tasks wait in a queue
// of this process, which another process cannot reach. `get_pshared` is glibc's getter for the attribute.
template <class Attr>
bool refuse_process_shared(const Attr* attr, int (*get_pshared)(const Attr*, int*), const char* what) noexcept {
  int pshared = PTHREAD_PROCESS_PRIVATE;
  if (attr == nullptr || get_pshared(attr, &pshared) != 0 || pshared != PTHREAD_PROCESS_SHARED) return false;
  refuse_once(what, "tasks wait in a per-process queue");
  return true;
}

}  // namespace skyloft::posix
