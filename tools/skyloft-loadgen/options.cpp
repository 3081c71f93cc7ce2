// options.cpp - skyloft-loadgen's command line (options.hpp), on the bench harness's Args walker.
#include "options.hpp"

#include <stdexcept>

#include "arg_values.hpp"
#include "bench_common.hpp"
#include "skyloft/io.hpp"
#include "units.hpp"

namespace skyloft::loadgen {
namespace {

constexpr std::string_view kUsage =
    "usage: {} --rates LIST [options]\n"
    "  Open-loop load generator: Poisson or constant-rate arrivals over loopback TCP or UDP; latency from the\n"
    "  intended send time; one table row and CSV row per load point.\n"
    "  --server ADDR          127.0.0.1:PORT or [::1]:PORT (default 127.0.0.1:7000)\n"
    "  --transport tcp|udp    (default tcp; memcached: tcp only)\n"
    "  --protocol synthetic|memcached   (default synthetic: the 32-byte binary protocol)\n"
    "  --rates LIST           r1,r2,... or start:stop:step; rates as 20000, 20k, 1.5M (required)\n"
    "  --arrival poisson|constant       (default poisson)\n"
    "  --mix MIX              synthetic: constant:D | exp:D | bimodal:P:D1:D2 | rocksdb[:DGET:DSCAN]\n"
    "                         (durations with ns/us/ms/s; default constant:10us)\n"
    "  --keys N --value-size B --get-ratio P --no-prefill   memcached workload (10000, 32, 0.9)\n"
    "  --duration D --warmup D --drain D --pause D   per point (2s, 500ms, 1s, 200ms)\n"
    "  --connections N        (default 16)   --threads N  generator threads (default 1)\n"
    "  --wait sleep|spin      how a generator thread waits for its next send time (default sleep)\n"
    "  --stop-p99 D           end the sweep after a point whose p99 exceeds D\n"
    "  --gen-slice-us N       ask for an N us scheduler slice for the generator threads (100..100000; default 0:\n"
    "                         the kernel's), so they preempt a busy server when a send is due\n"
    "  --csv PATH  --label NAME  --seed N  --quiet (no progress line)\n";

}  // namespace

const RequestMix& Options::request_mix() const {
  static const RequestMix kDefault = RequestMix::parse("constant:10us");
  return mix ? *mix : kDefault;
}

Options parse_options(int argc, char** argv) {
  Options o;
  bench::Args args(argc, argv, "skyloft-loadgen", kUsage);
  auto parsed = [&](const char* flag, auto&& parse) { return parsed_value(args, flag, parse); };
  auto duration = [&](const char* flag) { return parsed(flag, [](const std::string& v) { return parse_duration_ns(v); }); };
  bool memcached_flags = false;  // a memcached workload flag was given
  while (args.next()) {
    if (args.is("--server")) {
      o.server = args.value();
      if (!io::SocketAddr::parse(o.server)) {
        args.usage(fmt::format("--server: '{}' is not IPV4:PORT or [IPV6]:PORT", o.server));
      }
    } else if (args.is("--transport")) {
      const std::string v = args.value();
      if (v == "tcp") o.transport = Transport::tcp;
      else if (v == "udp") o.transport = Transport::udp;
      else args.usage(fmt::format("--transport: '{}' is not tcp or udp", v));
    } else if (args.is("--protocol")) {
      const std::string v = args.value();
      if (v == "synthetic") o.protocol = Protocol::synthetic;
      else if (v == "memcached") o.protocol = Protocol::memcached;
      else args.usage(fmt::format("--protocol: '{}' is not synthetic or memcached", v));
    } else if (args.is("--rates")) {
      o.rates = parsed("--rates", [](const std::string& v) { return parse_rate_list(v); });
    } else if (args.is("--arrival")) {
      o.arrival = parsed("--arrival", [](const std::string& v) { return parse_arrival_kind(v); });
    } else if (args.is("--mix")) {
      o.mix = parsed("--mix", [](const std::string& v) { return RequestMix::parse(v); });
    } else if (args.is("--keys")) {
      o.memcached.keys = static_cast<std::uint32_t>(args.long_value("--keys", 1, 100'000'000));
      memcached_flags = true;
    } else if (args.is("--value-size")) {
      o.memcached.value_size = static_cast<std::uint32_t>(args.long_value("--value-size", 0, 1 << 20));
      memcached_flags = true;
    } else if (args.is("--get-ratio")) {
      o.memcached.get_ratio = parsed("--get-ratio", [](const std::string& v) { return parse_probability(v); });
      memcached_flags = true;
    } else if (args.arg() == "--no-prefill") {
      o.memcached.prefill = false;
      memcached_flags = true;
    } else if (args.is("--duration")) {
      o.duration_ns = duration("--duration");
    } else if (args.is("--warmup")) {
      o.warmup_ns = duration("--warmup");
    } else if (args.is("--drain")) {
      o.drain_ns = duration("--drain");
    } else if (args.is("--pause")) {
      o.pause_ns = duration("--pause");
    } else if (args.is("--connections")) {
      o.connections = static_cast<int>(args.long_value("--connections", 1, 10000));
    } else if (args.is("--threads")) {
      o.threads = static_cast<int>(args.long_value("--threads", 1, 64));
    } else if (args.is("--wait")) {
      const std::string v = args.value();
      if (v == "sleep") o.wait = WaitMode::sleep;
      else if (v == "spin") o.wait = WaitMode::spin;
      else args.usage(fmt::format("--wait: '{}' is not sleep or spin", v));
    } else if (args.is("--stop-p99")) {
      o.stop_p99_ns = duration("--stop-p99");
    } else if (args.is("--csv")) {
      o.csv = args.value();
    } else if (args.is("--label")) {
      o.label = label_value(args);
    } else if (args.is("--seed")) {
      o.seed = static_cast<std::uint64_t>(args.long_value("--seed", 0, 1L << 62));
    } else if (args.is("--gen-slice-us")) {
      o.gen_slice_us = static_cast<std::uint32_t>(args.long_value("--gen-slice-us", 0, 100000));
      if (o.gen_slice_us != 0 && o.gen_slice_us < 100) args.usage("--gen-slice-us must be 0 or in [100, 100000]");
    } else if (args.arg() == "--quiet") {
      o.quiet = true;
    } else {
      args.usage(fmt::format("unknown argument '{}'", args.arg()));
    }
  }
  if (o.rates.empty()) args.usage("--rates is required");
  if (o.threads > o.connections) {
    args.usage(fmt::format("--threads {} needs at least as many --connections (got {})", o.threads, o.connections));
  }
  if (o.protocol == Protocol::memcached) {
    if (o.transport == Transport::udp) args.usage("--protocol memcached runs over --transport tcp only");
    if (o.mix) args.usage("--mix applies to --protocol synthetic (memcached: --keys, --value-size, --get-ratio)");
  } else if (memcached_flags) {
    args.usage("--keys, --value-size, --get-ratio and --no-prefill apply to --protocol memcached");
  }
  return o;
}

}  // namespace skyloft::loadgen
