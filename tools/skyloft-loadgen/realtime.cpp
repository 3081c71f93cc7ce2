// realtime.cpp - a short EEVDF slice for generator threads (realtime.hpp).
#include "realtime.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/core.h>

namespace skyloft::loadgen {
namespace {

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

}  // namespace

std::string set_generator_slice(std::uint32_t slice_us) {
  if (slice_us == 0) return "";
  SchedAttr a{};
  a.size = sizeof a;
  a.sched_policy = 0;  // SCHED_OTHER (the constant's header clashes with <sched.h>)
  a.sched_runtime = std::uint64_t{slice_us} * 1000;  // for SCHED_OTHER: the requested slice
  if (::syscall(SYS_sched_setattr, 0, &a, 0) == 0) return "";
  return fmt::format("cannot ask for a {} us scheduler slice: {}", slice_us, std::strerror(errno));
}

std::uint32_t current_slice_us() {
  SchedAttr a{};
  if (::syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) != 0) return 0;
  constexpr std::uint32_t kSchedDeadline = 6;  // its sched_runtime is a budget, not a slice
  return a.sched_policy != kSchedDeadline ? static_cast<std::uint32_t>(a.sched_runtime / 1000) : 0;
}

}  // namespace skyloft::loadgen
