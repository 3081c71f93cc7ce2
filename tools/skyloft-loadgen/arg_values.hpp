// arg_values.hpp - option values through units.hpp's parsers, for skyloft-loadgen's command line and the
// servers' (which share its quantities): a parser's std::invalid_argument becomes a usage error.
#pragma once

#include <string>

#include "bench_common.hpp"

namespace skyloft::loadgen {

// The current flag's value run through `parse` (which throws std::invalid_argument); on a throw, prints
// "<program>: <flag>: <message>" and the usage, and exits with 2.
template <class Parse>
auto parsed_value(bench::Args& args, const char* flag, Parse&& parse) {
  const std::string v = args.value();
  try {
    return parse(v);
  } catch (const std::invalid_argument& e) {
    args.usage(fmt::format("{}: {}", flag, e.what()));
  }
}

// The current flag's value as a CSV label: no comma, quote or newline (else a usage error).
inline std::string label_value(bench::Args& args) {
  std::string label = args.value();
  if (label.find_first_of(",\n\"") != std::string::npos) {
    args.usage(fmt::format("--label: '{}' must not contain a comma, a quote or a newline (it is a CSV field)", label));
  }
  return label;
}

}  // namespace skyloft::loadgen
