// mix.cpp - parsing and sampling of request mixes (mix.hpp).
#include "mix.hpp"

#include <cmath>
#include <stdexcept>
#include <vector>

#include <fmt/core.h>

#include "units.hpp"

namespace skyloft::loadgen {
namespace {

std::vector<std::string_view> split_colons(std::string_view text) {
  std::vector<std::string_view> parts;
  std::size_t b = 0;
  for (std::size_t e; (e = text.find(':', b)) != std::string_view::npos; b = e + 1) parts.push_back(text.substr(b, e - b));
  parts.push_back(text.substr(b));
  return parts;
}

std::uint64_t duration_part(std::string_view mix, std::string_view part) {
  try {
    return parse_duration_ns(part);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("mix '{}': {}", mix, e.what()));
  }
}

}  // namespace

RequestMix RequestMix::parse(std::string_view text) {
  const auto parts = split_colons(text);
  const std::string_view kind = parts[0];
  RequestMix m;
  auto want = [&](std::size_t n, const char* form) {
    if (parts.size() != n) throw std::invalid_argument(fmt::format("mix '{}' must be {}", text, form));
  };
  if (kind == "constant") {
    want(2, "constant:DURATION");
    m.kind_ = Kind::constant;
    m.d1_ns_ = duration_part(text, parts[1]);
  } else if (kind == "exp") {
    want(2, "exp:MEAN");
    m.kind_ = Kind::exp;
    m.d1_ns_ = duration_part(text, parts[1]);
  } else if (kind == "bimodal") {
    want(4, "bimodal:P:D1:D2 (P the probability of D1)");
    m.kind_ = Kind::bimodal;
    try {
      m.p_short_ = parse_probability(parts[1]);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fmt::format("mix '{}': {}", text, e.what()));
    }
    m.d1_ns_ = duration_part(text, parts[2]);
    m.d2_ns_ = duration_part(text, parts[3]);
  } else if (kind == "rocksdb") {
    if (parts.size() != 1 && parts.size() != 3) {
      throw std::invalid_argument(fmt::format("mix '{}' must be rocksdb or rocksdb:GET:SCAN", text));
    }
    m.kind_ = Kind::bimodal;
    m.p_short_ = 0.5;
    m.d1_ns_ = parts.size() == 3 ? duration_part(text, parts[1]) : 950;
    m.d2_ns_ = parts.size() == 3 ? duration_part(text, parts[2]) : 591'000;
  } else {
    throw std::invalid_argument(
        fmt::format("mix '{}' is not constant:D, exp:D, bimodal:P:D1:D2 or rocksdb[:GET:SCAN]", text));
  }
  m.name_ = std::string(text);
  return m;
}

Sample RequestMix::sample(std::mt19937_64& rng) const {
  switch (kind_) {
    case Kind::constant:
      return {wire::Op::get, d1_ns_};
    case Kind::exp: {
      std::exponential_distribution<double> d(1.0 / static_cast<double>(d1_ns_));
      // At least 1 ns: a zero service time would make the slowdown infinite.
      return {wire::Op::get, std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(d(rng))))};
    }
    case Kind::bimodal: {
      std::uniform_real_distribution<double> u(0.0, 1.0);
      return u(rng) < p_short_ ? Sample{wire::Op::get, d1_ns_} : Sample{wire::Op::scan, d2_ns_};
    }
  }
  return {wire::Op::get, d1_ns_};
}

double RequestMix::mean_ns() const {
  switch (kind_) {
    case Kind::constant:
    case Kind::exp:
      return static_cast<double>(d1_ns_);
    case Kind::bimodal:
      return p_short_ * static_cast<double>(d1_ns_) + (1 - p_short_) * static_cast<double>(d2_ns_);
  }
  return 0;
}

std::string RequestMix::describe() const { return name_; }

}  // namespace skyloft::loadgen
