// wait_table.hpp (internal) - shutdown access to the address-keyed wait queue.
#pragma once

#include <cstdint>
#include <vector>

#include "skyloft/runtime.hpp"

namespace skyloft {

class Task;

// Removes every task of runtime `epoch` still waiting in the table (called after the workers stopped),
// describing each in `out` and returning the tasks in `tasks`. Waiting plain threads stay.
void wait_table_drop_tasks(std::uint64_t epoch, std::vector<BlockedTaskInfo>& out, std::vector<Task*>& tasks);

}  // namespace skyloft
