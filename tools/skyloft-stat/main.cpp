// main.cpp - skyloft-stat: a live view of skyloftd's cores and apps, read from the shared region.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "multiapp/client.hpp"
#include "multiapp/socket_io.hpp"
#include "view.hpp"

namespace {

constexpr const char* kUsage = R"(usage: skyloft-stat [options]

Shows the cores skyloftd manages, which app holds each, and per app its class, tasks, run-queue length,
core switches in and out, preemptions and CPU share over the last interval.

options:
  --socket PATH      skyloftd's socket (default: /run/skyloft/skyloftd.sock as root,
                     $XDG_RUNTIME_DIR/skyloft/skyloftd.sock otherwise)
  --interval SECONDS refresh period, 0.05 .. 3600 (default 0.5)
  --count N          stop after N refreshes (default: until interrupted)
  --json             print one snapshot as JSON (CPU share over one interval) and exit
  --help, --version
)";

struct Options {
  std::string socket;
  double interval_s = 0.5;
  long count = 0;
  bool json = false;
};

[[noreturn]] void bad(const std::string& why) {
  std::fprintf(stderr, "skyloft-stat: error: %s (see skyloft-stat --help)\n", why.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg == "--version") {
      std::printf("skyloft-stat %s (protocol %u)\n", SKYLOFT_VERSION, static_cast<unsigned>(skyloft::multiapp::kVersion));
      std::exit(0);
    }
    if (arg == "--json") {
      o.json = true;
      continue;
    }
    std::string_view name = arg, value;
    if (std::size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (arg == "--socket" || arg == "--interval" || arg == "--count") {
      if (i + 1 >= argc) bad(fmt::format("option {} needs a value", arg));
      value = argv[++i];
    } else {
      bad(fmt::format("unknown option '{}'", arg));
    }
    if (name == "--socket") {
      if (value.empty()) bad("--socket: empty path");
      o.socket = std::string(value);
    } else if (name == "--interval") {
      std::string v(value);
      char* end = nullptr;
      errno = 0;
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || end != v.c_str() + v.size() || errno != 0) bad(fmt::format("--interval: '{}' is not a number", v));
      if (!(d >= 0.05 && d <= 3600)) bad(fmt::format("--interval: {} is out of range (0.05 .. 3600 seconds)", v));
      o.interval_s = d;
    } else if (name == "--count") {
      long n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size() || n < 1) {
        bad(fmt::format("--count: '{}' is not a positive number", value));
      }
      o.count = n;
    } else {
      bad(fmt::format("unknown option '{}'", name));
    }
  }
  if (o.socket.empty()) {
    try {
      o.socket = skyloft::multiapp::default_socket_path();
    } catch (const std::runtime_error& e) {
      bad(e.what());
    }
  }
  return o;
}

// "skyloft: cannot reach ..." becomes "skyloft-stat: cannot reach ...".
[[noreturn]] void fail(const std::exception& e) {
  std::string_view m = e.what();
  if (m.rfind("skyloft: ", 0) == 0) m.remove_prefix(9);
  std::fprintf(stderr, "skyloft-stat: %.*s\n", static_cast<int>(m.size()), m.data());
  std::exit(1);
}

bool daemon_alive(std::uint32_t pid) { return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  skyloft::multiapp::DaemonState state;
  try {
    state = skyloft::multiapp::query_daemon(o.socket);
  } catch (const std::exception& e) {
    fail(e);
  }
  skyloft_stat::Header header{o.socket, state.reply.daemon_pid, o.interval_s};
  const auto period = std::chrono::duration<double>(o.interval_s);
  skyloft_stat::Sample prev, now;
  if (!skyloft_stat::take_sample(state.region, prev)) {
    std::fprintf(stderr, "skyloft-stat: the shared region stays inconsistent (skyloftd died while publishing?)\n");
    return 1;
  }
  if (o.json) {
    std::this_thread::sleep_for(period);
    if (!skyloft_stat::take_sample(state.region, now)) now = prev;
    std::fputs(skyloft_stat::render_json(header, now, &prev).c_str(), stdout);
    return 0;
  }
  const bool tty = isatty(STDOUT_FILENO) == 1;
  for (long shown = 0; o.count == 0 || shown < o.count; ++shown) {
    std::this_thread::sleep_for(period);
    if (!daemon_alive(header.daemon_pid)) {
      // skyloftd went away; a restarted one has a new region.
      try {
        state = skyloft::multiapp::query_daemon(o.socket);
        header.daemon_pid = state.reply.daemon_pid;
        skyloft_stat::take_sample(state.region, prev);
        continue;
      } catch (const std::exception& e) {
        fail(e);
      }
    }
    if (!skyloft_stat::take_sample(state.region, now)) continue;
    std::string table = skyloft_stat::render_table(header, now, &prev);
    if (tty) std::fputs("\033[H\033[2J", stdout);
    else if (shown > 0) std::fputs("\n", stdout);
    std::fputs(table.c_str(), stdout);
    std::fflush(stdout);
    prev = now;
  }
  return 0;
}
