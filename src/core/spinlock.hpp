// spinlock.hpp - the runtime's spinlock is the public one (skyloft/spinlock.hpp, which policies use too).
#pragma once

#include "skyloft/spinlock.hpp"
