// pool.cpp - size and placement of the Linux thread pool (pool.hpp).
#include "pool.hpp"

#include <fmt/core.h>

#include "bench_common.hpp"
#include "realtime.hpp"

namespace skyloft::synthetic {

int pool_size(const ServerOptions& o) {
  if (o.threads > 0) return o.threads;
  const auto cores = o.cores_text.empty() ? skyloft::allowed_cores() : skyloft::parse_core_list(o.cores_text);
  return std::max<int>(1, static_cast<int>(cores.size()));
}

void pool_pin(const ServerOptions& o, int i) {
  if (!o.cores_text.empty()) {
    const auto cores = skyloft::parse_core_list(o.cores_text);
    bench::pin_self(cores[static_cast<std::size_t>(i) % cores.size()]);
  }
  if (const std::string e = loadgen::set_generator_slice(o.pool_slice_us); !e.empty() && i == 0) {
    fmt::print(stderr, "{}: pool threads: {}; default slice\n", o.program, e);
  }
}

}  // namespace skyloft::synthetic
