// clock.hpp (internal) - what the TSC clock behind now_ns() has found (clock.cpp), for tests and reports.
#pragma once

#include <cstdint>

namespace skyloft {

// How long now_ns() answers with clock_gettime while it calibrates the TSC rate against it.
inline constexpr std::uint64_t kCalibrationNs = 4'000'000;

// The calibrated rate, ns = (ticks * mult) >> 32; 0 while calibrating or without an invariant TSC.
std::uint64_t clock_tsc_mult() noexcept;

// Whether the CPU says its TSC is invariant (then now_ns() uses it once calibrated).
bool clock_tsc_invariant() noexcept;

}  // namespace skyloft
