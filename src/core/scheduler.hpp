// scheduler.hpp (internal) - switching between tasks, parking and unparking them.
#pragma once

#include "core/task.hpp"
#include "core/worker.hpp"

namespace skyloft {

// The task running on this thread, or nullptr (plain thread, or a worker in its loop).
Task* current_task() noexcept;

// Picks the next task for `w`: fires due timers, then asks the policy. Owner only.
Task* worker_pick(Worker* w);
// Makes `next` the running task of `w` (waits for it to finish switching out elsewhere). Owner only.
void worker_dispatch(Worker* w, Task* next) noexcept;
// Runs after every switch, in the resumed context: releases the context that switched to us (`transfer`,
// a Task* or nullptr for a worker loop) and restores the resumed task's errno.
void finish_switch(void* transfer) noexcept;

// Parks the current task until task_unpark() (a pending unpark makes it return at once). Must be called
// from a task. Returns after being woken; wake-ups may be spurious, so callers loop on their condition.
void task_park(WaitReason reason) noexcept;
// Makes a parked task runnable (or leaves a permit if it has not parked yet). Any thread.
void task_unpark(Task* task) noexcept;

// Frees an exited task's stack once it has fully switched out. `worker`: the caller's worker or nullptr.
void task_free(Task* task, Worker* worker) noexcept;

}  // namespace skyloft
