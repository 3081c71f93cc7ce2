// task_local.cpp - a task's own pointer and its stack bounds, for layers built above tasks (the POSIX layer).
#include "core/scheduler.hpp"
#include "core/task.hpp"

namespace skyloft::this_task {

void* local() noexcept {
  Task* t = current_task();
  return t ? t->local : nullptr;
}

bool set_local(void* value) noexcept {
  Task* t = current_task();
  if (t == nullptr) return false;
  t->local = value;
  return true;
}

bool stack_bounds(void** lo, std::size_t* size) noexcept {
  Task* t = current_task();
  if (t == nullptr) return false;
  // The spawned callable sits just below the record at the top: everything under it is the task's.
  auto* low = static_cast<char*>(t->stack.lo);
  *lo = low;
  *size = static_cast<std::size_t>(static_cast<char*>(t->payload) - low);
  return true;
}

}  // namespace skyloft::this_task
