// units.cpp - parsing of durations, rates and rate lists (units.hpp).
#include "units.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/core.h>

namespace skyloft::loadgen {
namespace {

// The whole of `text` as a finite number; the suffix after the number goes to *rest.
double leading_number(std::string_view text, std::string_view* rest, const char* what) {
  std::string s(text);
  std::size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (const std::exception&) {
    throw std::invalid_argument(fmt::format("'{}' is not a {}", text, what));
  }
  if (!std::isfinite(v)) throw std::invalid_argument(fmt::format("'{}' is not a finite {}", text, what));
  *rest = text.substr(pos);
  return v;
}

}  // namespace

std::uint64_t parse_duration_ns(std::string_view text) {
  constexpr const char* kWhat = "duration (a number with unit ns, us, ms or s, e.g. 4us)";
  std::string_view unit;
  double v = leading_number(text, &unit, kWhat);
  double scale = 0;
  if (unit == "ns") scale = 1;
  else if (unit == "us" || unit.empty()) scale = 1e3;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "s") scale = 1e9;
  else throw std::invalid_argument(fmt::format("'{}' has unit '{}'; use ns, us, ms or s", text, unit));
  double ns = std::round(v * scale);
  if (!(ns >= 1) || ns > 1e12) {
    throw std::invalid_argument(fmt::format("duration '{}' must be at least 1ns and at most 1000s", text));
  }
  return static_cast<std::uint64_t>(ns);
}

double parse_rate(std::string_view text) {
  constexpr const char* kWhat = "rate (requests per second, e.g. 20000, 20k or 1.5M)";
  std::string_view suffix;
  double v = leading_number(text, &suffix, kWhat);
  if (suffix == "k" || suffix == "K") v *= 1e3;
  else if (suffix == "M" || suffix == "m") v *= 1e6;
  else if (!suffix.empty()) throw std::invalid_argument(fmt::format("rate '{}' has suffix '{}'; use k or M", text, suffix));
  if (!(v > 0) || v > 1e8) throw std::invalid_argument(fmt::format("rate '{}' must be > 0 and <= 100M", text));
  return v;
}

std::vector<double> parse_rate_list(std::string_view text) {
  if (text.empty()) throw std::invalid_argument("the rate list is empty");
  std::vector<double> out;
  if (text.find(':') != std::string_view::npos) {
    std::vector<std::string_view> parts;
    std::size_t b = 0;
    for (std::size_t e; (e = text.find(':', b)) != std::string_view::npos; b = e + 1) parts.push_back(text.substr(b, e - b));
    parts.push_back(text.substr(b));
    if (parts.size() != 3) {
      throw std::invalid_argument(fmt::format("rate range '{}' must be start:stop:step", text));
    }
    const double start = parse_rate(parts[0]), stop = parse_rate(parts[1]), step = parse_rate(parts[2]);
    if (stop < start) throw std::invalid_argument(fmt::format("rate range '{}': stop is below start", text));
    // Points start + i * step; a stop within a millionth of a step of a point counts as reached.
    const double n = std::floor((stop - start) / step + 1e-6);
    if (n + 1 > 1000) throw std::invalid_argument(fmt::format("rate range '{}' has more than 1000 points", text));
    for (int i = 0; i <= static_cast<int>(n); ++i) out.push_back(start + i * step);
    return out;
  }
  std::size_t b = 0;
  for (;;) {
    std::size_t e = text.find(',', b);
    std::string_view item = text.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
    if (item.empty()) throw std::invalid_argument(fmt::format("rate list '{}' has an empty item", text));
    out.push_back(parse_rate(item));
    if (e == std::string_view::npos) break;
    b = e + 1;
  }
  if (out.size() > 1000) throw std::invalid_argument(fmt::format("rate list '{}' has more than 1000 points", text));
  return out;
}

double parse_probability(std::string_view text) {
  std::string_view rest;
  double p = leading_number(text, &rest, "probability (a number in [0, 1])");
  if (!rest.empty() || p < 0 || p > 1) {
    throw std::invalid_argument(fmt::format("probability '{}' must be a number in [0, 1]", text));
  }
  return p;
}

std::string format_rate(double rps) {
  if (rps >= 1e6 && std::fmod(rps, 1e5) == 0) return fmt::format("{}M", rps / 1e6);
  if (rps >= 1e3 && std::fmod(rps, 1e3) == 0) return fmt::format("{}k", rps / 1e3);
  return fmt::format("{}", rps);
}

}  // namespace skyloft::loadgen
