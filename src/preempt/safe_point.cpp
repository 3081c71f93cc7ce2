// safe_point.cpp - the async safe-point test; the rules are in safe_point.hpp.
//
// The unsafe-range table is read by signal handlers and rebuilt rarely (runtime start, dlopen, dlclose),
// so it is published RCU-style with reader counts (the "table flip"):
//   F1. A handler loads the current index i, increments readers[i], and re-loads the index; if it changed,
//       it decrements readers[i] and starts over. Then it reads table i and decrements readers[i].
//   F2. A rebuild (under g_rebuild_lock, with preemption off) picks the inactive table n, waits until
//       readers[n] is 0, fills it, and publishes it by storing the index.
// All of it is seq_cst: a handler that incremented readers[n] after the rebuilder's wait saw 0 re-loads
// the index, finds it is not n, and backs out before reading (Dekker). Handlers finish within
// microseconds, so the wait is short; a handler never waits.
// A table that would hold more ranges than it can marks itself overflowed: every PC then counts as unsafe
// (preemption falls back to preempt points and runtime entries) rather than letting some unsafe code through.
#include "preempt/safe_point.hpp"

#include <link.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/spinlock.hpp"
#include "core/task.hpp"
#include "skyloft/config.hpp"
#include "skyloft/preempt.hpp"

extern "C" {
extern std::uint64_t sky_xsave_size;  // the trampoline's XSAVE area (signal.cpp)
// Labels in the trampoline (src/arch/x86_64/preempt_x86_64_sysv_elf.S).
void sky_preempt_trampoline();
void sky_preempt_trampoline_resume();
void sky_preempt_trampoline_end();
}

namespace skyloft {

bool dlopen_wrappers_linked() noexcept;  // dlopen.cpp

namespace {

struct PcRange {
  std::uintptr_t lo, hi;
};
constexpr int kMaxRanges = 256;
struct RangeTable {
  PcRange ranges[kMaxRanges];
  int count = 0;
  bool overflowed = false;
};
RangeTable g_tables[2];
std::atomic<int> g_current{0};
std::atomic<int> g_readers[2] = {0, 0};
SpinLock g_rebuild_lock;
std::vector<std::string> g_user_prefixes;  // protected by g_rebuild_lock

// Stack the preemption call chain uses below the interrupted SP besides the XSAVE area: the red zone, the
// trampoline's register frame, sky_preempt_entry -> preempt_now -> the poll point (due timers fire here) ->
// the policy's tick and yield -> the switch. Measured by tests/test_preempt_safety.cpp
// (StackRoom.MeasurePreemptionChainDepth: a painted task stack, 1000-2000 preemptions at a 20 us quantum,
// the deepest overwritten byte), with this machine's 2432-byte XSAVE area: fifo/rr/cfs x timer/dispatcher
// reached 2784-2856 bytes in release and 3080-3544 bytes under ASan for one chain, i.e. at most ~1.1 KiB
// besides XSAVE. (Under ASan a second redirect occasionally still nests on top: 5584 bytes in all; every
// level checks its own room, so nesting cannot overflow.) 8 KiB is a margin of more than 7x for deeper
// policies and timer callbacks.
constexpr std::size_t kChainBytes = 8 * 1024;

bool has_prefix(const char* base, const char* prefix) { return std::strncmp(base, prefix, std::strlen(prefix)) == 0; }

bool is_unsafe_object(const char* name) {
  static const char* const kPrefixes[] = {"libc.so",  "ld-linux", "libgcc_s",   "libstdc++", "libasan",
                                          "libtsan",  "libubsan", "libpthread", "libm.so",   "libdl.so",
                                          "libmvec.so", "liblsan", "libresolv.so", "libnss_"};
  const char* base = std::strrchr(name, '/');
  base = base ? base + 1 : name;
  if (*base == '\0') return false;  // the main program (and objects without a name)
  for (const char* p : kPrefixes) {
    if (has_prefix(base, p)) return true;
  }
  for (const std::string& p : g_user_prefixes) {
    if (has_prefix(base, p.c_str())) return true;
  }
  return false;
}

int collect(dl_phdr_info* info, std::size_t, void* out) {
  auto* table = static_cast<RangeTable*>(out);
  if (info->dlpi_name == nullptr || !is_unsafe_object(info->dlpi_name)) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    if (table->count == kMaxRanges) {
      table->overflowed = true;
      return 0;
    }
    std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    table->ranges[table->count++] = PcRange{lo, lo + ph.p_memsz};
  }
  return 0;
}

void rebuild_locked() noexcept {
  const int next = 1 - g_current.load();
  while (g_readers[next].load() != 0) cpu_relax();  // F2
  g_tables[next].count = 0;
  g_tables[next].overflowed = false;
  dl_iterate_phdr(&collect, &g_tables[next]);
  g_current.store(next);
}

}  // namespace

void refresh_unsafe_ranges() noexcept {
  // Preemption off: a task preempted while holding g_rebuild_lock would make the next refresh on its
  // worker spin forever.
  preempt_disable();
  {
    std::lock_guard<SpinLock> g(g_rebuild_lock);
    rebuild_locked();
  }
  preempt_enable();
}

void set_no_preempt_libs(const std::vector<std::string>& prefixes) {
  if (!dlopen_wrappers_linked()) return;
  preempt_disable();
  {
    std::lock_guard<SpinLock> g(g_rebuild_lock);
    g_user_prefixes = prefixes;
    rebuild_locked();
  }
  preempt_enable();
}

void validate_no_preempt_libs(const std::vector<std::string>& prefixes) {
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    const std::string& p = prefixes[i];
    if (p.empty()) {
      throw ConfigError(fmt::format("no_preempt_libs[{}] is empty: name each library by its file-name prefix, "
                                    "e.g. 'libjemalloc.so'",
                                    i));
    }
    if (p.find('/') != std::string::npos) {
      throw ConfigError(fmt::format("no_preempt_libs[{}] '{}' is a path; name the library by its file-name "
                                    "prefix, e.g. 'libjemalloc.so'",
                                    i, p));
    }
  }
}

bool pc_in_unsafe_code(std::uintptr_t pc) noexcept {
  int i;
  for (;;) {  // F1
    i = g_current.load();
    g_readers[i].fetch_add(1);
    if (g_current.load() == i) break;
    g_readers[i].fetch_sub(1);
  }
  const RangeTable& t = g_tables[i];
  bool unsafe = t.overflowed;
  for (int r = 0; r < t.count && !unsafe; ++r) {
    if (pc >= t.ranges[r].lo && pc < t.ranges[r].hi) unsafe = true;
  }
  g_readers[i].fetch_sub(1);
  return unsafe;
}

std::size_t preempt_stack_need() noexcept { return sky_xsave_size + kChainBytes; }

namespace {
// Still leaving an earlier preemption (see the trampoline's header): in the trampoline, or in
// sky_preempt_entry's epilogue, whose return address sits within the top words of the stack.
constexpr int kEpilogueWords = 8;
__attribute__((no_sanitize_address)) bool leaving_trampoline(std::uintptr_t pc, std::uintptr_t sp, std::uintptr_t hi) noexcept {
  const auto begin = reinterpret_cast<std::uintptr_t>(&sky_preempt_trampoline);
  const auto end = reinterpret_cast<std::uintptr_t>(&sky_preempt_trampoline_end);
  if (pc >= begin && pc < end) return true;
  const auto resume = reinterpret_cast<std::uintptr_t>(&sky_preempt_trampoline_resume);
  const auto* words = reinterpret_cast<const std::uintptr_t*>(sp);
  for (int i = 0; i < kEpilogueWords && sp + (i + 1) * sizeof(std::uintptr_t) <= hi; ++i) {
    if (words[i] == resume) return true;
  }
  return false;
}
}  // namespace

SafePoint classify_safe_point(const Task& t, std::uintptr_t pc, std::uintptr_t sp) noexcept {
  if (t.preempt_off.load(std::memory_order_relaxed) != 0) return SafePoint::preempt_off;
  auto lo = reinterpret_cast<std::uintptr_t>(t.ctx.stack_lo);
  auto hi = lo + t.ctx.stack_size;
  if (sp <= lo || sp > hi) return SafePoint::foreign_stack;
  if (sp <= lo + preempt_stack_need()) return SafePoint::no_stack_room;
  if (leaving_trampoline(pc, sp, hi) || pc_in_unsafe_code(pc)) return SafePoint::unsafe_pc;
  return SafePoint::safe;
}

bool async_safe_point(const Task& t, std::uintptr_t pc, std::uintptr_t sp) noexcept {
  return classify_safe_point(t, pc, sp) == SafePoint::safe;
}

}  // namespace skyloft
