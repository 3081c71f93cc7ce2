// realtime.cpp - a short EEVDF slice for generator threads (realtime.hpp), through the runtime's helper.
#include "realtime.hpp"

#include <cstring>

#include <fmt/core.h>

namespace skyloft::loadgen {

std::string set_generator_slice(std::uint32_t slice_us) {
  if (slice_us == 0) return "";
  if (const int err = fair_slice::request(slice_us); err != 0) {
    return fmt::format("cannot ask for a {} us scheduler slice: {}", slice_us, std::strerror(err));
  }
  return "";
}

std::uint32_t current_slice_us() { return fair_slice::current_us(); }

}  // namespace skyloft::loadgen
