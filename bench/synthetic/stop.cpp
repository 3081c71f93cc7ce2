// stop.cpp - when the network servers stop (g_stop, set by SIGINT / SIGTERM or a --seconds timer), and
// run_server, which runs a mode until then.
#include <signal.h>

#include <chrono>
#include <thread>

#include "servers.hpp"

namespace skyloft::synthetic {

std::atomic<bool> g_stop{false};

namespace {
extern "C" void on_stop_signal(int) { g_stop.store(true); }
}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::thread stop_after(double seconds) {
  return std::thread([seconds] {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!g_stop.load() && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    g_stop.store(true);
  });
}

}  // namespace skyloft::synthetic

namespace skyloft::synthetic {

int run_server(const ServerOptions& o) {
  if (o.inprocess) return run_inprocess(o);
  install_stop_signals();
  std::thread timer;
  if (o.seconds > 0) timer = stop_after(o.seconds);
  const int status = o.mode == Mode::linux ? serve_linux(o) : serve_skyloft(o);
  g_stop.store(true);
  if (timer.joinable()) timer.join();
  return status;
}

}  // namespace skyloft::synthetic
