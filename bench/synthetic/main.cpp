// main.cpp - skyloft-synthetic: the synthetic server (servers.hpp), on skyloft or a Linux thread pool.
#include <thread>

#include "servers.hpp"

int main(int argc, char** argv) {
  using namespace skyloft::synthetic;
  const ServerOptions o = parse_server_options(argc, argv);
  if (o.inprocess) return run_inprocess(o);
  install_stop_signals();
  std::thread timer;
  if (o.seconds > 0) timer = stop_after(o.seconds);
  const int status = o.mode == Mode::linux ? serve_linux(o) : serve_skyloft(o);
  g_stop.store(true);
  if (timer.joinable()) timer.join();
  return status;
}
