// safe_point.cpp - the async safe-point test; the rules are in safe_point.hpp.
//
// The unsafe-range table is read by signal handlers and rebuilt rarely, so it is published RCU-style: a
// rebuild fills the inactive one of two tables and flips an index; handlers read whichever was current
// when they started. Two rebuilds cannot overlap (a lock), and a handler that started before the flip
// finishes within microseconds, long before the next rebuild could reuse its table.
#include "preempt/safe_point.hpp"

#include <link.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "core/spinlock.hpp"
#include "core/task.hpp"

extern "C" {
extern std::uint64_t sky_xsave_size;  // the trampoline's XSAVE area (signal.cpp)
}

namespace skyloft {
namespace {

struct PcRange {
  std::uintptr_t lo, hi;
};
constexpr int kMaxRanges = 128;
struct RangeTable {
  PcRange ranges[kMaxRanges];
  int count = 0;
};
RangeTable g_tables[2];
std::atomic<int> g_current{0};
SpinLock g_rebuild_lock;

// Frames the preemption chain puts below the interrupted SP besides the XSAVE area: the red zone, the
// trampoline's saved registers, sky_preempt_entry -> preempt_now -> the policy's tick and yield -> the
// switch. An upper estimate (ASan frames are the largest).
constexpr std::size_t kChainBytes = 8 * 1024;

bool is_unsafe_object(const char* name) {
  static const char* const kPrefixes[] = {"libc.so",   "ld-linux", "libgcc_s", "libstdc++", "libasan",
                                          "libtsan",   "libubsan", "libpthread", "libm.so", "libdl.so"};
  const char* base = std::strrchr(name, '/');
  base = base ? base + 1 : name;
  for (const char* p : kPrefixes) {
    if (std::strncmp(base, p, std::strlen(p)) == 0) return true;
  }
  return false;
}

int collect(dl_phdr_info* info, std::size_t, void* out) {
  auto* table = static_cast<RangeTable*>(out);
  if (info->dlpi_name == nullptr || !is_unsafe_object(info->dlpi_name)) return 0;
  for (int i = 0; i < info->dlpi_phnum && table->count < kMaxRanges; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    table->ranges[table->count++] = PcRange{lo, lo + ph.p_memsz};
  }
  return 0;
}

}  // namespace

void refresh_unsafe_ranges() noexcept {
  std::lock_guard<SpinLock> g(g_rebuild_lock);
  const int next = 1 - g_current.load(std::memory_order_relaxed);
  g_tables[next].count = 0;
  dl_iterate_phdr(&collect, &g_tables[next]);
  g_current.store(next, std::memory_order_release);
}

bool pc_in_unsafe_code(std::uintptr_t pc) noexcept {
  const RangeTable& t = g_tables[g_current.load(std::memory_order_acquire)];
  for (int i = 0; i < t.count; ++i) {
    if (pc >= t.ranges[i].lo && pc < t.ranges[i].hi) return true;
  }
  return false;
}

std::size_t preempt_stack_need() noexcept { return sky_xsave_size + kChainBytes; }

bool async_safe_point(const Task& t, std::uintptr_t pc, std::uintptr_t sp) noexcept {
  if (t.preempt_off.load(std::memory_order_relaxed) != 0) return false;
  auto lo = reinterpret_cast<std::uintptr_t>(t.ctx.stack_lo);
  auto hi = lo + t.ctx.stack_size;
  if (sp <= lo + preempt_stack_need() || sp > hi) return false;
  return !pc_in_unsafe_code(pc);
}

}  // namespace skyloft
