// mix.hpp - request mixes: the operation and the service time of each request a generator sends.
//
// Syntax (durations as in units.hpp, a bare number being microseconds):
//   constant:D            every request GET with service time D
//   exp:D                 GET, exponentially distributed service time of mean D
//   bimodal:P:D1:D2       with probability P a GET of D1, else a SCAN of D2 (bimodal:0.995:4us:10ms is the
//                         synthetic workload of the original's evaluation)
//   rocksdb[:DG:DS]       50% GET of DG, 50% SCAN of DS (default 950ns and 591us, the original's figures)
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "synthetic_wire.hpp"

namespace skyloft::loadgen {

struct Sample {
  wire::Op op;
  std::uint64_t service_ns;
};

class RequestMix {
 public:
  // Parses the syntax above; throws std::invalid_argument naming the bad part.
  static RequestMix parse(std::string_view text);

  Sample sample(std::mt19937_64& rng) const;
  // The configured mean service time (ns).
  double mean_ns() const;
  // The mix as parsed, normalized ("bimodal:0.995:4000ns:10000000ns").
  std::string describe() const;

 private:
  enum class Kind { constant, exp, bimodal } kind_ = Kind::constant;
  double p_short_ = 1;             // probability of the first (GET) class
  std::uint64_t d1_ns_ = 1000;     // GET (or the constant / exponential mean)
  std::uint64_t d2_ns_ = 0;        // SCAN
  std::string name_;
};

}  // namespace skyloft::loadgen
