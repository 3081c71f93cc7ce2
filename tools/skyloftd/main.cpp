// main.cpp - skyloftd: the daemon that shares a set of cores between skyloft applications.
#include <cstdio>

#include "options.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
  skyloftd::ParseOutcome parsed = skyloftd::parse_options(argc, argv);
  if (!parsed.options) {
    std::fputs(parsed.text.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  skyloftd::Server server(std::move(*parsed.options));
  return server.run();
}
