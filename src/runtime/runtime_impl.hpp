// runtime_impl.hpp (internal) - what the files of src/runtime/ share.
#pragma once

#include <memory>

#include "core/runtime_core.hpp"
#include "skyloft/runtime.hpp"

namespace skyloft {

struct AppLink;

struct Runtime::Impl {
  Impl();
  ~Impl();
  std::unique_ptr<AppLink> app;       // under a daemon: the membership (outlives the core's processors)
  std::unique_ptr<RuntimeCore> core;
};

void start_runtime(RuntimeCore& rt, AppLink* app);  // start.cpp
ShutdownReport stop_runtime(RuntimeCore& rt);       // shutdown.cpp (once; later calls return the report)
void dispatcher_loop(RuntimeCore& rt);              // dispatcher.cpp

}  // namespace skyloft
