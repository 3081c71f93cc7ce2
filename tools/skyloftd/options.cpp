// options.cpp - parsing skyloftd's options ("--name value" or "--name=value"); exit 2 on any bad one.
#include "options.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "multiapp/protocol.hpp"
#include "multiapp/shm_layout.hpp"
#include "multiapp/socket_io.hpp"
#include "skyloft/config.hpp"

namespace skyloftd {
namespace {

constexpr const char* kUsage = R"(usage: skyloftd [options]

Owns a set of cores and shares them between skyloft applications (one worker of all apps active per core).
Runs in the foreground and logs to stderr.

options:
  --cores LIST              cores to manage, e.g. 0-3,6 (default: every core skyloftd may run on; at most {max_cores})
  --socket PATH             Unix socket to listen on (default: /run/skyloft/skyloftd.sock as root,
                            $XDG_RUNTIME_DIR/skyloft/skyloftd.sock otherwise); the directory is created
  --allow-uid LIST          uids or user names that may register, comma-separated, repeatable
                            (default: skyloftd's own uid when neither --allow-uid nor --allow-gid is given)
  --allow-gid LIST          gids or group names whose members may register (primary or supplementary group)
  --min-lc-cores N          cores kept for latency-critical apps while any is registered (default 0)
  --message-timeout-ms N    a started message must be complete within N ms, else the peer is dropped (default 1000)
  --log-level LEVEL         error, warn, info or debug (default info)
  --help                    show this help
  --version                 show the version
)";

struct Bad : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T parse_number(std::string_view opt, std::string_view text, T lo, T hi) {
  T v{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) {
    throw Bad(fmt::format("{}: '{}' is not a number", opt, text));
  }
  if (v < lo || v > hi) throw Bad(fmt::format("{}: {} is out of range ({}..{})", opt, text, lo, hi));
  return v;
}

std::vector<std::string> split_list(std::string_view opt, std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t comma = text.find(',', pos);
    std::string_view part = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (part.empty()) throw Bad(fmt::format("{}: empty element in '{}'", opt, text));
    out.emplace_back(part);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

uid_t parse_uid(std::string_view opt, const std::string& s) {
  if (all_digits(s)) return parse_number<uid_t>(opt, s, 0, 0xfffffffeu);
  std::vector<char> buf(16384);
  passwd pw{}, *res = nullptr;
  if (getpwnam_r(s.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || res == nullptr) {
    throw Bad(fmt::format("{}: '{}' is neither a uid nor a known user name", opt, s));
  }
  return pw.pw_uid;
}

gid_t parse_gid(std::string_view opt, const std::string& s) {
  if (all_digits(s)) return parse_number<gid_t>(opt, s, 0, 0xfffffffeu);
  std::vector<char> buf(16384);
  group gr{}, *res = nullptr;
  if (getgrnam_r(s.c_str(), &gr, buf.data(), buf.size(), &res) != 0 || res == nullptr) {
    throw Bad(fmt::format("{}: '{}' is neither a gid nor a known group name", opt, s));
  }
  return gr.gr_gid;
}

// The online cores (/sys/devices/system/cpu/online), or 0 .. nprocs-1 if that cannot be read.
std::vector<int> online_cores() {
  std::ifstream f("/sys/devices/system/cpu/online");
  std::string line;
  if (f && std::getline(f, line)) {
    try {
      return skyloft::parse_core_list(line);
    } catch (const skyloft::ConfigError&) {
    }
  }
  std::vector<int> all;
  for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN); ++c) all.push_back(static_cast<int>(c));
  return all;
}

LogLevel parse_level(std::string_view v) {
  if (v == "error") return LogLevel::error;
  if (v == "warn") return LogLevel::warn;
  if (v == "info") return LogLevel::info;
  if (v == "debug") return LogLevel::debug;
  throw Bad(fmt::format("--log-level: '{}' is not one of error, warn, info, debug", v));
}

}  // namespace

ParseOutcome parse_options(int argc, char** argv) {
  ParseOutcome out;
  DaemonOptions o;
  std::optional<std::string> cores_text;
  bool uid_given = false;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        out.text = fmt::format(kUsage, fmt::arg("max_cores", skyloft::multiapp::kMaxManagedCores));
        return out;
      }
      if (arg == "--version") {
        out.text = fmt::format("skyloftd {} (protocol {}, region {})\n", SKYLOFT_VERSION,
                               skyloft::multiapp::kVersion, skyloft::multiapp::kRegionVersion);
        return out;
      }
      if (arg.substr(0, 2) != "--") throw Bad(fmt::format("unexpected argument '{}' (skyloftd takes options only)", arg));
      std::string_view name = arg, value;
      bool has_value = false;
      if (std::size_t eq = arg.find('='); eq != std::string_view::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        has_value = true;
      }
      static constexpr std::string_view kWithValue[] = {"--cores", "--socket", "--allow-uid", "--allow-gid",
                                                        "--min-lc-cores", "--message-timeout-ms", "--log-level"};
      if (std::find(std::begin(kWithValue), std::end(kWithValue), name) == std::end(kWithValue)) {
        throw Bad(fmt::format("unknown option '{}' (see skyloftd --help)", name));
      }
      if (!has_value) {
        if (i + 1 >= argc) throw Bad(fmt::format("option {} needs a value", name));
        value = argv[++i];
      }
      if (name == "--cores") {
        cores_text = std::string(value);
      } else if (name == "--socket") {
        if (value.empty()) throw Bad("--socket: empty path");
        o.socket_path = std::string(value);
      } else if (name == "--allow-uid") {
        uid_given = true;
        for (const std::string& s : split_list(name, value)) o.allow_uids.push_back(parse_uid(name, s));
      } else if (name == "--allow-gid") {
        for (const std::string& s : split_list(name, value)) o.allow_gids.push_back(parse_gid(name, s));
      } else if (name == "--min-lc-cores") {
        o.min_lc_cores = parse_number<std::uint32_t>(name, value, 0, skyloft::multiapp::kMaxManagedCores);
      } else if (name == "--message-timeout-ms") {
        o.message_timeout_ms = parse_number<int>(name, value, 1, 600'000);
      } else if (name == "--log-level") {
        o.log_level = parse_level(value);
      }
    }

    // Cores: parse, then every one must be online. (skyloftd itself need not run on them: a unit file may
    // pin the daemon to a housekeeping core.) The default is the cores skyloftd may run on, which in a
    // container is its cpuset.
    if (cores_text) {
      try {
        o.cores = skyloft::parse_core_list(*cores_text);
      } catch (const skyloft::ConfigError& e) {
        throw Bad(fmt::format("--cores: {}", e.what()));
      }
      const std::vector<int> online = online_cores();
      for (int c : o.cores) {
        if (std::find(online.begin(), online.end(), c) == online.end()) {
          throw Bad(fmt::format("--cores: core {} is out of range: the cores online are {}", c,
                                skyloft::format_core_list(online)));
        }
      }
    } else {
      o.cores = skyloft::allowed_cores();
    }
    if (o.cores.size() > skyloft::multiapp::kMaxManagedCores) {
      throw Bad(fmt::format("--cores: {} cores, at most {} can be managed (pass --cores)", o.cores.size(),
                            skyloft::multiapp::kMaxManagedCores));
    }
    if (o.min_lc_cores > o.cores.size()) {
      throw Bad(fmt::format("--min-lc-cores: {} is more than the {} managed cores", o.min_lc_cores, o.cores.size()));
    }
    if (!uid_given && o.allow_gids.empty()) o.allow_uids.push_back(geteuid());
    if (o.socket_path.empty()) {
      try {
        o.socket_path = skyloft::multiapp::default_socket_path();
      } catch (const std::runtime_error& e) {
        throw Bad(e.what());
      }
    }
  } catch (const Bad& e) {
    out.exit_code = 2;
    out.text = fmt::format("skyloftd: error: {}\n", e.what());
    return out;
  }
  out.options = std::move(o);
  return out;
}

}  // namespace skyloftd
