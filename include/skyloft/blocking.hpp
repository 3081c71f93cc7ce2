// blocking.hpp - marking code that may block its kernel thread (a system call, a lock outside skyloft).
//
// A task that blocks in the kernel blocks the kernel thread under it, and with it every other task queued
// on that thread's core. Inside a BlockingSection the runtime knows this may happen: if the section lasts
// longer than Config::handoff_us (default 100 us), a spare kernel thread takes over the core and runs the
// other tasks; when the section ends, the task continues on whichever core the scheduler gives it (it may
// move). Entering and leaving cost two atomic operations; nothing else happens for short sections. Blocking
// that is not marked is found by the runtime's monitor (more slowly: it looks every ~50 us and asks the
// kernel whether the thread sleeps). Preemption is disabled inside a section. Outside tasks: no-op.
#pragma once

namespace skyloft {

class BlockingSection {
 public:
  BlockingSection() noexcept;
  ~BlockingSection();
  BlockingSection(const BlockingSection&) = delete;
  BlockingSection& operator=(const BlockingSection&) = delete;

 private:
  void* task_;
  void* proc_ = nullptr;     // the processor and the kernel thread the section began on: once the call
  void* kthread_ = nullptr;  // returns, the monitor may be taking the processor away (handoff.cpp H1)
};

}  // namespace skyloft
