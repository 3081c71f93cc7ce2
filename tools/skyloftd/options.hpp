// options.hpp - skyloftd's command line: every option, its default, and a precise error for bad input.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "log.hpp"

namespace skyloftd {

struct DaemonOptions {
  std::vector<int> cores;           // --cores (default: every core skyloftd may run on)
  std::string socket_path;          // --socket (default: multiapp::default_socket_path())
  std::vector<uid_t> allow_uids;    // --allow-uid (default: skyloftd's own uid, unless --allow-gid is given)
  std::vector<gid_t> allow_gids;    // --allow-gid
  std::uint32_t min_lc_cores = 0;   // --min-lc-cores
  int message_timeout_ms = 1000;    // --message-timeout-ms: a started message must be complete within this
  LogLevel log_level = LogLevel::info;
};

struct ParseOutcome {
  std::optional<DaemonOptions> options;  // set: run the daemon
  int exit_code = 0;                     // otherwise exit with this (0: --help/--version, 2: bad option)
  std::string text;                      // what to print (stdout for exit 0, stderr otherwise)
};

ParseOutcome parse_options(int argc, char** argv);

}  // namespace skyloftd
