// systems.hpp - the systems skyloft_wakeup measures, one row each: native threads (with the kernel's
// default slice or an EEVDF custom slice) and skyloft policy/mechanism/quantum configurations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace skyloft::bench::wakeup {

struct System {
  std::string label;      // e.g. "native", "native slice 100us", "fifo", "rr/hybrid/50us"
  bool native = false;
  std::string policy;     // skyloft policy
  std::string mechanism;  // none, timer, ...
  int quantum_us = 0;     // 0: none
  bool preempt_points = true;
  int slice_us = 0;        // native: the custom slice every thread asks for (0: the kernel's default)
  std::string slice_note;  // native: which quanta the slice stands for when the kernel's range clamped them
  std::optional<std::uint32_t> handoff_us;  // skyloft: Config::handoff_us for this row (else --handoff-us)
  std::vector<std::pair<std::string, std::string>> params;  // skyloft: policy parameters of this row
};

// A native row; slice_us 0: the kernel's default slice, else the custom slice every thread asks for.
System native_system(int slice_us);

// Native rows whose custom slices stand for skyloft quanta: one per distinct slice, the quanta clamped to
// the range the kernel takes; the note names the quanta a clamped row stands for.
std::vector<System> native_slice_systems(const std::vector<int>& quanta);

// A skyloft row; quantum 0: no preemption (label POLICY/none). Timer and dispatcher rows run the work loop
// without preempt points (the signal is their only way in).
System skyloft_system(const std::string& policy, const std::string& mech, int quantum_us);

// A headline skyloft row from POLICY/MECHANISM/QUANTUM_US[:KEY=VALUE...]: handoff_us sets
// Config::handoff_us, any other key is a policy parameter (set after the tuning); nullopt when malformed.
std::optional<System> parse_headline_system(const std::string& spec);

}  // namespace skyloft::bench::wakeup
