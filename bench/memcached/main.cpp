// main.cpp - skyloft-memcached: a memcached server (text protocol) on skyloft or on a Linux thread pool
// (server.hpp). Stops at SIGINT / SIGTERM or after --seconds.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "server.hpp"

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  using namespace skyloft::memcached;
  const ServerOptions o = parse_server_options(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::thread timer;
  if (o.seconds > 0) {
    timer = std::thread([&o] {
      const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.seconds);
      while (!g_stop.load() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      g_stop.store(true);
    });
  }
  ServerState state(o.settings());
  state.settings.threads = o.mode == Mode::linux ? 0 : static_cast<int>(
      o.cores_text.empty() ? skyloft::allowed_cores().size() : skyloft::parse_core_list(o.cores_text).size());
  const int status = o.mode == Mode::linux ? serve_linux(o, state, g_stop) : serve_skyloft(o, state, g_stop);
  g_stop.store(true);
  if (timer.joinable()) timer.join();
  return status;
}
