// shm_layout.cpp - the shared region's packed words, shared futexes, checker and sequence-locked reads.
#include "multiapp/shm_layout.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace skyloft::multiapp {

bool post_wake(std::atomic<std::uint32_t>& word, std::uint32_t generation) noexcept {
  const std::uint32_t tag = wake_tag(generation);
  std::uint32_t w = word.load(std::memory_order_relaxed);
  for (;;) {
    if ((w & 0xff000000u) != tag) return false;  // the id was released (and maybe reused) since
    std::uint32_t next = tag | ((w + 1) & 0x00ffffffu);
    // seq_cst: the waiter reads the owner word after loading this word; the poster wrote the owner word
    // before posting (the handoff's publish, then wake).
    if (word.compare_exchange_weak(w, next, std::memory_order_seq_cst, std::memory_order_relaxed)) return true;
  }
}

void futex_wait_shared(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t timeout_ns) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout_ns != 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
    tsp = &ts;
  }
  // FUTEX_WAIT without FUTEX_PRIVATE_FLAG: keyed by (inode, offset), so it pairs with wakes from other
  // processes that map the same file. Errors (EAGAIN, EINTR, ETIMEDOUT) are all "go and look again".
  syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), FUTEX_WAIT, expected, tsp, nullptr, 0);
}

int futex_wake_shared(const std::atomic<std::uint32_t>& word, int count) noexcept {
  long r = syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), FUTEX_WAKE, count, nullptr, nullptr, 0);
  return r < 0 ? 0 : static_cast<int>(r);
}

std::optional<std::uint32_t> core_index_of(const ControlTable& c, std::uint32_t cpu) {
  const std::uint32_t n = managed_cores(c);
  for (std::uint32_t i = 0; i < n; ++i) {
    if (c.cores[i].cpu.load(std::memory_order_relaxed) == cpu) return i;
  }
  return std::nullopt;
}

bool checker_enter(CoreSlot& slot) noexcept {
  std::uint32_t before = slot.active.fetch_add(1, std::memory_order_acq_rel);
  if (before != 0) {
    slot.violations.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void checker_leave(CoreSlot& slot) noexcept { slot.active.fetch_sub(1, std::memory_order_acq_rel); }

bool read_control(const ControlTable& c, ControlSnapshot& out, int attempts) noexcept {
  for (int attempt = 0; attempt < attempts; ++attempt) {
    std::uint32_t s1 = c.seq.load(std::memory_order_acquire);
    if (s1 & 1u) continue;  // the daemon is publishing
    out.ncores = managed_cores(c);
    out.napps = c.napps.load(std::memory_order_relaxed);
    out.assignments = c.assignments.load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < kMaxApps; ++i) {
      const AppEntry& e = c.apps[i];
      AppSnapshot& a = out.apps[i];
      std::uint32_t st = e.state.load(std::memory_order_relaxed);
      a.state = st == static_cast<std::uint32_t>(AppState::registered) ? AppState::registered : AppState::free;
      a.generation = e.generation.load(std::memory_order_relaxed);
      a.pid = e.pid.load(std::memory_order_relaxed);
      a.app_class = e.app_class.load(std::memory_order_relaxed) == 0 ? AppClass::lc : AppClass::be;
      a.demand = e.demand.load(std::memory_order_relaxed);
      a.ncores_granted = e.ncores_granted.load(std::memory_order_relaxed);
      for (std::size_t k = 0; k < kMaxAppName; ++k) a.name[k] = e.name[k].load(std::memory_order_relaxed);
      a.name[kMaxAppName] = '\0';
    }
    for (std::uint32_t i = 0; i < kMaxManagedCores; ++i) {
      const CoreGrant& g = c.cores[i];
      CoreSnapshot& k = out.cores[i];
      k.cpu = g.cpu.load(std::memory_order_relaxed);
      k.grant = g.grant.load(std::memory_order_relaxed);
      k.eligible = g.eligible.load(std::memory_order_relaxed);
      k.lc = g.lc.load(std::memory_order_relaxed) != 0;
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (c.seq.load(std::memory_order_relaxed) == s1) return true;
  }
  return false;
}

}  // namespace skyloft::multiapp
