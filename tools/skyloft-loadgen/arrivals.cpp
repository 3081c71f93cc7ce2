// arrivals.cpp - Poisson and constant-rate arrival processes (arrivals.hpp).
#include "arrivals.hpp"

#include <stdexcept>

#include <fmt/core.h>

namespace skyloft::loadgen {

ArrivalKind parse_arrival_kind(std::string_view text) {
  if (text == "poisson") return ArrivalKind::poisson;
  if (text == "constant") return ArrivalKind::constant;
  throw std::invalid_argument(fmt::format("arrival process '{}' is not poisson or constant", text));
}

const char* arrival_kind_name(ArrivalKind kind) { return kind == ArrivalKind::poisson ? "poisson" : "constant"; }

ArrivalProcess::ArrivalProcess(ArrivalKind kind, double rate_rps)
    : kind_(kind), mean_gap_ns_(1e9 / rate_rps), exp_(1.0 / (1e9 / rate_rps)) {}

std::uint64_t ArrivalProcess::next(std::mt19937_64& rng) {
  t_ += kind_ == ArrivalKind::poisson ? exp_(rng) : mean_gap_ns_;
  return static_cast<std::uint64_t>(t_);
}

}  // namespace skyloft::loadgen
