// pool.hpp - the Linux thread pool's threads: how many, and pinned where (--threads, --cores).
#pragma once

#include <thread>
#include <vector>

#include "server_options.hpp"

namespace skyloft::synthetic {

// --threads, or one per core of --cores (or per allowed core).
int pool_size(const ServerOptions& o);
// Pins the calling pool thread `i` to a core of --cores (round robin); unpinned without --cores.
void pool_pin(const ServerOptions& o, int i);

}  // namespace skyloft::synthetic
