// realtime.hpp - scheduling of generator threads that share the cores with the server (--gen-slice-us).
//
// On a machine where the generator shares the cores with the server (2 cores here), a generator thread
// under the normal scheduler waits for a busy server thread's slice to end before it may send: milliseconds
// of lateness on Linux 6.x (EEVDF, ~3 ms slices), which then count in every latency (it is measured from
// the intended send time). EEVDF lets a thread ask for a shorter slice (sched_attr.sched_runtime, Linux
// 6.12+): its deadlines come sooner, so when it wakes it preempts a thread with the default slice, as a
// NIC's interrupt would, and it is still scheduled fairly.
//
// Rejected: SCHED_FIFO. The generator hands requests to the runtime (spawn), whose stack pool and queues
// take spin locks; a FIFO generator that preempts a lock holder on its core spins until the kernel's RT
// throttling stops it (950 ms of each second): measured, sends ~0.9 s late.
#pragma once

#include <cstdint>
#include <string>

// Relative: the plain pthread benchmarks that compile the load generator lack the runtime's include paths.
#include "../../src/core/fair_slice.hpp"

namespace skyloft::loadgen {

// The custom slices the kernel takes (it clamps sched_runtime to this range).
inline constexpr std::uint32_t kMinSliceUs = fair_slice::kMinUs;
inline constexpr std::uint32_t kMaxSliceUs = fair_slice::kMaxUs;

// Asks for an EEVDF slice of `slice_us` microseconds (100..100000) for the calling thread; 0 leaves it
// alone. Returns "" or why it could not (an older kernel): the caller reports it and goes on.
std::string set_generator_slice(std::uint32_t slice_us);

// The fair-class slice the kernel reports for the calling thread (sched_getattr's sched_runtime), in
// microseconds; 0 when it reports none. A kernel older than 6.12 accepts sched_setattr with a
// sched_runtime for SCHED_OTHER but ignores it, and reports 0 here: the way to tell that it lacks custom
// slices.
std::uint32_t current_slice_us();

}  // namespace skyloft::loadgen
