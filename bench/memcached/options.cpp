// options.cpp - skyloft-memcached's command line (server.hpp).
#include <charconv>
#include <stdexcept>

#include "bench_common.hpp"
#include "server.hpp"
#include "skyloft/io.hpp"

namespace skyloft::memcached {
namespace {

constexpr std::string_view kUsage =
    "usage: {} [--mode skyloft|linux] [options]\n"
    "  A memcached server (text protocol, memcached 1.6) on skyloft tasks or on a Linux epoll thread pool.\n"
    "  --listen IP        address to listen on (default 127.0.0.1)\n"
    "  --port N           TCP port (default 11211; 0: any free port, printed at start)\n"
    "  -m MB              memory for items, evicting the least recently used (default 64)\n"
    "  -I BYTES           largest item, key and data (default 1048576; 1024 .. 134217728; k/m suffix)\n"
    "  --cores LIST       skyloft: the worker cores; linux: pin the pool threads to these, round robin\n"
    "  skyloft:           --policy NAME --preempt none|timer|dispatcher|flag|hybrid|uintr --quantum-us N\n"
    "                     (defaults from the SKYLOFT_* variables)\n"
    "  linux:             --threads N (default one per core of --cores, or per allowed core)\n"
    "  --seconds S        stop after S seconds (default: at SIGINT / SIGTERM)\n";

std::size_t parse_size(bench::Args& args, const std::string& v) {
  std::size_t mult = 1;
  std::string digits = v;
  if (!digits.empty() && (digits.back() == 'k' || digits.back() == 'K')) mult = 1024, digits.pop_back();
  else if (!digits.empty() && (digits.back() == 'm' || digits.back() == 'M')) mult = 1024 * 1024, digits.pop_back();
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    args.usage(fmt::format("-I: '{}' is not a size in bytes (e.g. 1048576, 512k, 2m)", v));
  }
  n *= mult;
  if (n < 1024 || n > (128u << 20)) args.usage(fmt::format("-I: {} is out of range [1024, 134217728]", v));
  return n;
}

}  // namespace

ServerSettings ServerOptions::settings() const {
  ServerSettings s;
  s.max_item_size = max_item_size;
  s.memory_limit = memory_mb << 20;
  s.port = port;
  return s;
}

ServerOptions parse_server_options(int argc, char** argv) {
  ServerOptions o;
  bench::Args args(argc, argv, "skyloft-memcached", kUsage);
  try {
    o.config = skyloft::Config::from_env();
  } catch (const skyloft::ConfigError& e) {
    args.usage(e.what());
  }
  bool skyloft_flags = false, linux_flags = false;
  while (args.next()) {
    if (args.is("--mode")) {
      const std::string v = args.value();
      if (v == "skyloft") o.mode = Mode::skyloft;
      else if (v == "linux") o.mode = Mode::linux;
      else args.usage(fmt::format("--mode: '{}' is not skyloft or linux", v));
    } else if (args.is("--listen")) {
      o.host = args.value();
      if (!io::SocketAddr::parse(o.host + ":0")) args.usage(fmt::format("--listen: '{}' is not an IPv4 address", o.host));
    } else if (args.is("--port") || args.arg() == "-p") {
      o.port = static_cast<int>(args.long_value("--port", 0, 65535));
    } else if (args.arg() == "-m") {
      o.memory_mb = static_cast<std::size_t>(args.long_value("-m", 1, 1 << 20));
    } else if (args.arg() == "-I") {
      o.max_item_size = parse_size(args, args.value());
    } else if (args.is("--policy")) {
      o.config.policy = args.value();
      skyloft_flags = true;
    } else if (args.is("--preempt")) {
      o.config.preempt = args.value();
      skyloft_flags = true;
    } else if (args.is("--quantum-us")) {
      o.config.quantum_us = static_cast<std::uint32_t>(args.long_value("--quantum-us", 1, 1'000'000));
      skyloft_flags = true;
    } else if (args.is("--cores")) {
      o.cores_text = args.value();
      try {
        skyloft::parse_core_list(o.cores_text);
      } catch (const skyloft::ConfigError& e) {
        args.usage(fmt::format("--cores: {}", e.what()));
      }
      o.config.cores = o.cores_text;
    } else if (args.is("--threads") || args.arg() == "-t") {
      o.threads = static_cast<int>(args.long_value("--threads", 1, 1024));
      linux_flags = true;
    } else if (args.is("--seconds")) {
      o.seconds = args.double_value("--seconds", 0.001, 86400);
    } else {
      args.usage(fmt::format("unknown argument '{}'", args.arg()));
    }
  }
  if (o.mode == Mode::linux && skyloft_flags) args.usage("--policy, --preempt and --quantum-us apply to --mode skyloft");
  if (o.mode == Mode::skyloft && linux_flags) args.usage("--threads applies to --mode linux (skyloft: --cores)");
  return o;
}

}  // namespace skyloft::memcached
