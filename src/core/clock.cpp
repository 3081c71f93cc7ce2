// clock.cpp - now_ns(): CLOCK_MONOTONIC nanoseconds, through the TSC when it is invariant.
//
// clock_gettime costs ~23 ns on the development VM and rdtsc ~10 ns, and timers are checked on every
// scheduling decision while any are armed. The TSC rate is calibrated once against CLOCK_MONOTONIC over
// 2 ms when the runtime starts (start-up time matters: skyloft-run starts one runtime per program), each
// end a clock read bracketed by two TSC reads, so the error is the brackets' width over 2 ms: tens of ppm.
// Deadlines are shared with the kernel (futex timeouts), so the TSC time must not drift from
// CLOCK_MONOTONIC: each thread re-bases its TSC->ns mapping on a fresh clock_gettime every 2^23 ticks
// (~3 ms at 2.6 GHz), which bounds the drift from that error to a fraction of a microsecond.
// A CPU without constant_tsc/nonstop_tsc uses clock_gettime throughout.
#include <time.h>
#include <x86intrin.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "skyloft/time.hpp"

namespace skyloft {
namespace {

std::uint64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

bool cpu_has_invariant_tsc() {
  std::FILE* f = std::fopen("/proc/cpuinfo", "r");
  if (!f) return false;
  char line[4096];
  bool constant = false, nonstop = false;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "flags", 5) != 0) continue;
    constant = std::strstr(line, " constant_tsc") != nullptr;
    nonstop = std::strstr(line, " nonstop_tsc") != nullptr;
    break;
  }
  std::fclose(f);
  return constant && nonstop;
}

// A CLOCK_MONOTONIC reading and the TSC at that moment: the midpoint of the tightest of a few brackets of
// two TSC reads around the clock read (a bracket is wide when the thread lost its core in between).
void bracketed_read(std::uint64_t& ns, std::uint64_t& tsc) noexcept {
  std::uint64_t best = UINT64_MAX;
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t a = __rdtsc();
    const std::uint64_t n = monotonic_ns();
    const std::uint64_t b = __rdtsc();
    if (b - a < best) {
      best = b - a;
      ns = n;
      tsc = a + (b - a) / 2;
    }
  }
}

constexpr std::uint64_t kRebaseTicks = std::uint64_t{1} << 23;

struct TscRate {
  bool use_tsc = false;
  std::uint64_t mult = 0;  // ns = (ticks * mult) >> 32

  TscRate() {
    if (!cpu_has_invariant_tsc()) return;
    std::uint64_t ns0, t0, ns1, t1;
    bracketed_read(ns0, t0);
    timespec sleep{0, 2'000'000};
    nanosleep(&sleep, nullptr);
    bracketed_read(ns1, t1);
    if (t1 <= t0 || ns1 <= ns0) return;
    mult = static_cast<std::uint64_t>((static_cast<unsigned __int128>(ns1 - ns0) << 32) / (t1 - t0));
    use_tsc = true;
  }
};

const TscRate& tsc_rate() {
  static const TscRate rate;  // calibrated on first use (Runtime construction), not at load time
  return rate;
}

struct ThreadBase {
  std::uint64_t tsc = 0;
  std::uint64_t ns = 0;
  bool valid = false;
};
thread_local ThreadBase tl_base;

// A new (tsc, ns) pair for this thread. The thread may lose its core between its clock_gettime and its
// rdtsc; a pair taken across such a gap would put this thread's clock ahead of the others' by the gap for
// a whole rebase period (seen: a completion stamped before the request it answered). So the clock read
// is bracketed by two TSC reads and kept only when they are close. The pair takes the later TSC read, so
// this clock is never ahead of CLOCK_MONOTONIC (a deadline computed from it never fires early), and
// behind by at most the bracket.
void rebase(ThreadBase& base, const TscRate& rate) noexcept {
  constexpr std::uint64_t kMaxBracketNs = 2'000;
  std::uint64_t best_gap = UINT64_MAX;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::uint64_t t0 = __rdtsc();
    const std::uint64_t ns = monotonic_ns();
    const std::uint64_t t1 = __rdtsc();
    const std::uint64_t gap = t1 - t0;
    if (gap < best_gap) {
      best_gap = gap;
      base.tsc = t1;
      base.ns = ns;
    }
    if (((static_cast<unsigned __int128>(gap) * rate.mult) >> 32) <= kMaxBracketNs) break;
  }
  base.valid = true;
}

}  // namespace

std::uint64_t now_ns() noexcept {
  const TscRate& rate = tsc_rate();
  if (!rate.use_tsc) return monotonic_ns();
  std::uint64_t tsc = __rdtsc();
  ThreadBase& base = tl_base;
  std::uint64_t delta = tsc - base.tsc;
  if (!base.valid || delta >= kRebaseTicks) {
    rebase(base, rate);
    return base.ns;
  }
  return base.ns + static_cast<std::uint64_t>((static_cast<unsigned __int128>(delta) * rate.mult) >> 32);
}

}  // namespace skyloft
