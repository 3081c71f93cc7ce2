// thread_record.cpp - finding the caller's thread record, its references, and lock-owner identities.
#include "posix/thread_record.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "posix/real.hpp"
#include "skyloft/task.hpp"

namespace skyloft::posix {
namespace {

// A plain kernel thread's record (keys only); freed by the thread_local's destructor at the thread's exit.
struct PlainRecord {
  ThreadRecord* record = nullptr;
  ~PlainRecord() {
    if (record != nullptr) {
      run_key_destructors(record);
      delete record;
    }
  }
};
thread_local PlainRecord tl_plain;

}  // namespace

ThreadRecord::~ThreadRecord() {
  for (KeySlot* block : keys) std::free(block);
}

ThreadRecord* current_record() noexcept {
  if (void* mine = this_task::local()) return static_cast<ThreadRecord*>(mine);
  if (this_task::in_task()) {
    // A task this layer did not start (none should exist): adopt it; the record lives as long as the process.
    auto* r = new ThreadRecord;
    r->refs.store(1, std::memory_order_relaxed);
    this_task::set_local(r);
    return r;
  }
  if (tl_plain.record == nullptr) {
    tl_plain.record = new ThreadRecord;
    tl_plain.record->is_task = false;
  }
  return tl_plain.record;
}

void record_release(ThreadRecord* r) noexcept {
  if (r->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete r;
}

std::uintptr_t self_identity() noexcept {
  if (void* mine = this_task::local()) return reinterpret_cast<std::uintptr_t>(mine);
  if (this_task::in_task()) return reinterpret_cast<std::uintptr_t>(current_record());
  return static_cast<std::uintptr_t>(SKY_REAL(pthread_self, "GLIBC_2.2.5")());
}

void refuse_once(const char* what, const char* why) noexcept {
  // One line per distinct call site is enough: the caller passes string literals.
  static std::atomic<const char*> last{nullptr};
  if (last.exchange(what, std::memory_order_relaxed) == what) return;
  char line[256];
  int n = snprintf(line, sizeof line, "skyloft: %s is not supported (%s)\n", what, why);
  if (n > 0) (void)!write(STDERR_FILENO, line, static_cast<std::size_t>(n) < sizeof line ? n : sizeof line - 1);
}

}  // namespace skyloft::posix
