// fault.hpp - naming the task whose stack overflowed, and the runtime threads' alternate signal stacks.
#pragma once

namespace skyloft {

// Installs the SIGSEGV/SIGBUS handler that turns a fault in a task's guard page into a clear
// "stack overflow in task N" message; other faults go to the previous handler. Idempotent.
void install_fault_handler();
// The overflowing task's stack cannot hold a handler's frame, so every runtime thread has an alternate
// signal stack (also used by the preemption handler). Returns it, for remove_signal_stack().
void* install_signal_stack();
void remove_signal_stack(void* stack);

}  // namespace skyloft
