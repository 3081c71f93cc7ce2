// main.cpp - skyloft-synthetic: the synthetic server (servers.hpp), on skyloft or a Linux thread pool.
#include <signal.h>

#include <chrono>
#include <thread>

#include "servers.hpp"

namespace skyloft::synthetic {
std::atomic<bool> g_stop{false};
}  // namespace skyloft::synthetic

namespace {
extern "C" void on_stop_signal(int) { skyloft::synthetic::g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  using namespace skyloft::synthetic;
  const ServerOptions o = parse_server_options(argc, argv);
  if (o.inprocess) return run_inprocess(o);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::thread timer;
  if (o.seconds > 0) {
    timer = std::thread([s = o.seconds] {
      const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(s);
      while (!g_stop.load() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      g_stop.store(true);
    });
  }
  const int status = o.mode == Mode::linux ? serve_linux(o) : serve_skyloft(o);
  g_stop.store(true);
  if (timer.joinable()) timer.join();
  return status;
}
