// main.cpp - skyloft-synthetic: the synthetic server (servers.hpp), on skyloft or a Linux thread pool.
#include "servers.hpp"

int main(int argc, char** argv) {
  using namespace skyloft::synthetic;
  const ServerOptions o = parse_server_options(argc, argv);
  return run_server(o);
}
