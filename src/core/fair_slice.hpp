// fair_slice.hpp - a thread's EEVDF slice: sched_attr.sched_runtime for SCHED_OTHER (Linux 6.12+).
//
// A shorter slice gives a thread earlier virtual deadlines: woken, it preempts a thread with the default
// slice (~3 ms on 6.x) instead of waiting for that slice to end, and it is still scheduled fairly. Used by
// the runtime's worker threads (Config::worker_slice_us) and by skyloft-loadgen's generator threads; header
// only, because plain pthread benchmarks use it without the runtime.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace skyloft::fair_slice {

// The custom slices the kernel takes (it clamps sched_runtime to this range).
inline constexpr std::uint32_t kMinUs = 100;
inline constexpr std::uint32_t kMaxUs = 100000;

// struct sched_attr, version 0 (SCHED_ATTR_SIZE_VER0 = 48 bytes), as sched_setattr(2) documents it: the
// kernel header's definition clashes with glibc's <sched.h>.
struct SchedAttr {
  std::uint32_t size;
  std::uint32_t sched_policy;
  std::uint64_t sched_flags;
  std::int32_t sched_nice;
  std::uint32_t sched_priority;
  std::uint64_t sched_runtime;
  std::uint64_t sched_deadline;
  std::uint64_t sched_period;
};
static_assert(sizeof(SchedAttr) == 48);

// Asks for a slice of `us` microseconds for the calling thread, keeping its policy and nice value (a
// program started under `nice` stays niced). 0, or an errno: EINVAL for a real-time or deadline thread,
// whose sched_runtime means something else.
inline int request(std::uint32_t us) noexcept {
  SchedAttr a{};
  if (::syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) != 0) return errno;
  constexpr std::uint32_t kOther = 0, kBatch = 3, kIdle = 5;  // the fair class (their header clashes)
  if (a.sched_policy != kOther && a.sched_policy != kBatch && a.sched_policy != kIdle) return EINVAL;
  a.size = sizeof a;
  a.sched_flags &= 0x01;  // keep SCHED_FLAG_RESET_ON_FORK only (the others need fields VER0 lacks)
  a.sched_runtime = std::uint64_t{us} * 1000;
  return ::syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 0 : errno;
}

// The fair-class slice the kernel reports for the calling thread, in microseconds; 0 when it reports none
// (a kernel older than 6.12 accepts a sched_runtime for SCHED_OTHER but ignores it, and reports 0).
inline std::uint32_t current_us() noexcept {
  SchedAttr a{};
  if (::syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) != 0) return 0;
  constexpr std::uint32_t kSchedDeadline = 6;  // its sched_runtime is a budget, not a slice
  return a.sched_policy != kSchedDeadline ? static_cast<std::uint32_t>(a.sched_runtime / 1000) : 0;
}

}  // namespace skyloft::fair_slice
