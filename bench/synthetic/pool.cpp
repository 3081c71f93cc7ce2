// pool.cpp - size and placement of the Linux thread pool (pool.hpp).
#include "pool.hpp"

#include "bench_common.hpp"

namespace skyloft::synthetic {

int pool_size(const ServerOptions& o) {
  if (o.threads > 0) return o.threads;
  const auto cores = o.cores_text.empty() ? skyloft::allowed_cores() : skyloft::parse_core_list(o.cores_text);
  return std::max<int>(1, static_cast<int>(cores.size()));
}

void pool_pin(const ServerOptions& o, int i) {
  if (o.cores_text.empty()) return;
  const auto cores = skyloft::parse_core_list(o.cores_text);
  bench::pin_self(cores[static_cast<std::size_t>(i) % cores.size()]);
}

}  // namespace skyloft::synthetic
