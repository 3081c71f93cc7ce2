// skyloft.hpp - the whole public API.
#pragma once

#include "skyloft/blocking.hpp"
#include "skyloft/config.hpp"
#include "skyloft/policy.hpp"
#include "skyloft/preempt.hpp"
#include "skyloft/runtime.hpp"
#include "skyloft/stats.hpp"
#include "skyloft/sync.hpp"
#include "skyloft/task.hpp"
#include "skyloft/time.hpp"
#include "skyloft/wait.hpp"
