// systems.cpp - building skyloft_wakeup's rows: labels, native custom slices clamped to the kernel's range,
// whether the work loop has preempt points, and the headline's POLICY/MECHANISM/QUANTUM_US[:KEY=VALUE...].
#include "systems.hpp"

#include <algorithm>
#include <exception>
#include <map>

#include <fmt/format.h>

#include "options.hpp"
#include "realtime.hpp"  // skyloft-loadgen's custom slice range

namespace skyloft::bench::wakeup {

System native_system(int slice_us) {
  System s;
  s.label = slice_us > 0 ? fmt::format("native slice {}us", slice_us) : "native";
  s.native = true;
  s.mechanism = "kernel";
  s.preempt_points = !g_opt.no_preempt_points;
  s.slice_us = slice_us;
  return s;
}

std::vector<System> native_slice_systems(const std::vector<int>& quanta) {
  using skyloft::loadgen::kMaxSliceUs;
  using skyloft::loadgen::kMinSliceUs;
  std::map<int, std::vector<int>> by_slice;
  for (int q : quanta) by_slice[std::clamp(q, static_cast<int>(kMinSliceUs), static_cast<int>(kMaxSliceUs))].push_back(q);
  std::vector<System> out;
  for (const auto& [slice, qs] : by_slice) {
    System s = native_system(slice);
    if (qs.size() > 1 || qs[0] != slice) {
      s.slice_note = fmt::format("slice for quanta {} us (the kernel takes custom slices of {}..{} us)",
                                 fmt::join(qs, ","), kMinSliceUs, kMaxSliceUs);
    }
    out.push_back(s);
  }
  return out;
}

System skyloft_system(const std::string& policy, const std::string& mech, int quantum_us) {
  System s;
  s.label = quantum_us > 0 ? fmt::format("{}/{}/{}us", policy, mech, quantum_us) : fmt::format("{}/{}", policy, mech);
  s.policy = policy;
  s.mechanism = mech;
  s.quantum_us = quantum_us;
  s.preempt_points = !g_opt.no_preempt_points && mech != "timer" && mech != "dispatcher";
  return s;
}

std::optional<System> parse_headline_system(const std::string& spec) {
  const auto opts = split(spec, ':');
  if (opts.empty()) return std::nullopt;
  const auto parts = split(opts[0], '/');
  try {
    if (parts.size() != 3) return std::nullopt;
    std::size_t used = 0;
    const int q = std::stoi(parts[2], &used);
    if (used != parts[2].size() || q < 1 || q > 1000000) return std::nullopt;
    System s = skyloft_system(parts[0], parts[1], q);
    for (std::size_t i = 1; i < opts.size(); ++i) {
      const auto eq = opts[i].find('=');
      if (eq == std::string::npos || eq == 0) return std::nullopt;
      const std::string key = opts[i].substr(0, eq), value = opts[i].substr(eq + 1);
      if (key == "handoff_us") {
        const long h = std::stol(value, &used);
        if (used != value.size() || h < 0 || h > 1000000) return std::nullopt;
        s.handoff_us = static_cast<std::uint32_t>(h);
      } else {
        s.params.emplace_back(key, value);
      }
      s.label += " " + opts[i];
    }
    return s;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}


}  // namespace skyloft::bench::wakeup
