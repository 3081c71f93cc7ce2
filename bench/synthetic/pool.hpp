// pool.hpp - the Linux thread pool's threads: how many, pinned where, with what slice (--threads, --cores,
// --slice-us).
#pragma once

#include <thread>
#include <vector>

#include "server_options.hpp"

namespace skyloft::synthetic {

// --threads, or one per core of --cores (or per allowed core).
int pool_size(const ServerOptions& o);
// Pins the calling pool thread `i` to a core of --cores (round robin; unpinned without --cores) and asks
// for its --slice-us.
void pool_pin(const ServerOptions& o, int i);

}  // namespace skyloft::synthetic
