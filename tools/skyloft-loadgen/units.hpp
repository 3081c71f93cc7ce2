// units.hpp - parsing of the load generator's quantities: durations ("4us"), rates ("10k") and rate lists.
//
// Every parser throws std::invalid_argument whose message quotes the bad text and says what is allowed;
// callers prefix the option name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace skyloft::loadgen {

// "<number><unit>" with unit ns, us, ms or s (a bare number is microseconds), > 0 and <= 1000 s; returns
// nanoseconds (rounded). "0.5ms" -> 500000.
std::uint64_t parse_duration_ns(std::string_view text);

// A rate in requests per second: "<number>[k|M]" ("20000", "20k", "1.5M"), > 0 and <= 100M.
double parse_rate(std::string_view text);

// A sweep of rates: "r1,r2,..." (each parse_rate) or "start:stop:step" (start, start + step, ... up to and
// including stop; stop >= start, step > 0, at most 1000 points).
std::vector<double> parse_rate_list(std::string_view text);

// A probability in [0, 1] ("0.995").
double parse_probability(std::string_view text);

// "20000" for 20000, "20k" for 20000 when whole thousands, "1.5M" for 1500000: the inverse of parse_rate,
// for labels.
std::string format_rate(double rps);

}  // namespace skyloft::loadgen
