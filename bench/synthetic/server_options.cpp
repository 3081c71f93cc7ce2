// server_options.cpp - the servers' command line (server_options.hpp).
#include "server_options.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "arg_values.hpp"
#include "bench_common.hpp"
#include "skyloft/io.hpp"
#include "spin.hpp"
#include "units.hpp"

namespace skyloft::synthetic {
namespace {

constexpr std::string_view kUsageLine =
    "usage: {} [--mode skyloft|linux] [runtime options] (network options | --inprocess generator options)\n";
constexpr std::string_view kCommonUsage =
    "  runtime (skyloft): --policy NAME --preempt none|timer|dispatcher|flag|hybrid|uintr --quantum-us N\n"
    "                     --cores LIST --dispatcher-core C --spin-us N (an idle worker's spin before it parks)\n"
    "                     (defaults from SKYLOFT_* variables)\n"
    "  pool (linux):      --threads N (default one per allowed core) --cores LIST (pin the pool)\n"
    "                     --slice-us N (an EEVDF slice of N us for every pool thread, Linux 6.12+; 0: default)\n"
    "  network:           --listen ADDR (127.0.0.1:7000) --udp --task-per request|connection (skyloft)\n"
    "                     --seconds S (stop after S; default: at SIGINT/SIGTERM)\n"
    "  --inprocess:       an in-process open-loop generator, no network: --rates LIST\n"
    "                     --mix MIX (default bimodal:0.995:4us:10ms) --arrival poisson|constant\n"
    "                     --duration D --warmup D --drain D --stop-p99 D --csv PATH --label NAME --seed N\n"
    "                     --gen-slice-us N (a short scheduler slice for the generator thread; 0: default)\n"
    "                     --gen-core C (pin the generator thread to core C; default: unpinned)\n"
    "                     --gen-wait sleep|spin (how the generator thread waits for an arrival; default sleep)\n"
    "                     --generator thread|poller (poller: the runtime's polling thread releases the arrivals,\n"
    "                     as the original's dispatcher did: sq, or a ticker mechanism with --dispatcher-core)\n";

// The current flag's value as one of two named choices, or a usage error naming both.
template <class E>
E choice(bench::Args& args, const char* flag, std::pair<const char*, E> a, std::pair<const char*, E> b) {
  const std::string v = args.value();
  if (v == a.first) return a.second;  // std::string == const char*
  if (v == b.first) return b.second;
  args.usage(fmt::format("{}: '{}' is not {} or {}", flag, v, a.first, b.first));
}

// An EEVDF slice in microseconds: 0 (the default slice) or what the kernel takes (100..100000).
std::uint32_t slice_us_value(bench::Args& args, const char* flag) {
  const auto us = static_cast<std::uint32_t>(args.long_value(flag, 0, 100000));
  if (us != 0 && us < 100) args.usage(fmt::format("{} must be 0 or in [100, 100000]", flag));
  return us;
}

}  // namespace

const loadgen::RequestMix& ServerOptions::request_mix() const {
  static const loadgen::RequestMix kDefault = loadgen::RequestMix::parse("bimodal:0.995:4us:10ms");
  return mix ? *mix : kDefault;
}

ServerOptions parse_server_options(int argc, char** argv) { return parse_server_options(argc, argv, ServerProgram{}); }

ServerOptions parse_server_options(int argc, char** argv, const ServerProgram& program) {
  ServerOptions o;
  o.program = program.name;
  o.serve = serve_request;
  const std::string usage_text = std::string(kUsageLine) + std::string(program.about) + std::string(kCommonUsage) +
                                 std::string(program.extra_usage);
  bench::Args args(argc, argv, program.name, usage_text);
  try {
    o.config = skyloft::Config::from_env();
  } catch (const skyloft::ConfigError& e) {
    args.usage(e.what());
  }
  auto parsed = [&](const char* flag, auto&& parse) { return loadgen::parsed_value(args, flag, parse); };
  auto duration = [&](const char* flag) {
    return parsed(flag, [](const std::string& v) { return loadgen::parse_duration_ns(v); });
  };
  bool generator_flags = false, network_flags = false, skyloft_flags = false, linux_flags = false;
  while (args.next()) {
    if (args.is("--mode")) {
      o.mode = choice(args, "--mode", std::pair{"skyloft", Mode::skyloft}, std::pair{"linux", Mode::linux});
    } else if (args.is("--policy")) {
      o.config.policy = args.value();
      skyloft_flags = true;
    } else if (args.is("--preempt")) {
      o.config.preempt = args.value();
      skyloft_flags = true;
    } else if (args.is("--quantum-us")) {
      o.config.quantum_us = static_cast<std::uint32_t>(args.long_value("--quantum-us", 1, 1'000'000));
      skyloft_flags = true;
    } else if (args.is("--spin-us")) {
      o.config.spin_us = static_cast<std::uint32_t>(args.long_value("--spin-us", 0, 1'000'000));
      skyloft_flags = true;
    } else if (args.is("--dispatcher-core")) {
      o.config.dispatcher_core = static_cast<int>(args.long_value("--dispatcher-core", 0, 4095));
      skyloft_flags = true;
    } else if (args.is("--cores")) {
      o.cores_text = args.value();
      try {
        skyloft::parse_core_list(o.cores_text);
      } catch (const skyloft::ConfigError& e) {
        args.usage(fmt::format("--cores: {}", e.what()));
      }
      o.config.cores = o.cores_text;
    } else if (args.is("--threads")) {
      o.threads = static_cast<int>(args.long_value("--threads", 1, 1024));
      linux_flags = true;
    } else if (args.is("--listen")) {
      o.listen = args.value();
      if (!io::SocketAddr::parse(o.listen)) args.usage(fmt::format("--listen: '{}' is not IPV4:PORT or [IPV6]:PORT", o.listen));
      network_flags = true;
    } else if (args.arg() == "--udp") {
      o.udp = true;
      network_flags = true;
    } else if (args.is("--task-per")) {
      o.task_per = choice(args, "--task-per", std::pair{"request", TaskPer::request},
                          std::pair{"connection", TaskPer::connection});
      network_flags = true;
      skyloft_flags = true;
    } else if (args.is("--seconds")) {
      o.seconds = args.double_value("--seconds", 0.001, 86400);
      network_flags = true;
    } else if (args.arg() == "--inprocess") {
      o.inprocess = true;
    } else if (args.is("--rates")) {
      o.rates = parsed("--rates", [](const std::string& v) { return loadgen::parse_rate_list(v); });
      generator_flags = true;
    } else if (program.parse_flag && program.parse_flag(args)) {
      // the program's own flag
    } else if (program.mix_flag && args.is("--mix")) {
      o.mix = parsed("--mix", [](const std::string& v) { return loadgen::RequestMix::parse(v); });
      generator_flags = true;
    } else if (args.is("--arrival")) {
      o.arrival = parsed("--arrival", [](const std::string& v) { return loadgen::parse_arrival_kind(v); });
      generator_flags = true;
    } else if (args.is("--duration")) {
      o.duration_ns = duration("--duration");
      generator_flags = true;
    } else if (args.is("--warmup")) {
      o.warmup_ns = duration("--warmup");
      generator_flags = true;
    } else if (args.is("--drain")) {
      o.drain_ns = duration("--drain");
      generator_flags = true;
    } else if (args.is("--stop-p99")) {
      o.stop_p99_ns = duration("--stop-p99");
      generator_flags = true;
    } else if (args.is("--csv")) {
      o.csv = args.value();
      generator_flags = true;
    } else if (args.is("--label")) {
      o.label = loadgen::label_value(args);
      generator_flags = true;
    } else if (args.is("--gen-slice-us")) {
      o.gen_slice_us = slice_us_value(args, "--gen-slice-us");
      generator_flags = true;
    } else if (args.is("--gen-core")) {
      o.gen_core = static_cast<int>(args.long_value("--gen-core", 0, 4095));
      const auto allowed = skyloft::allowed_cores();
      if (std::find(allowed.begin(), allowed.end(), o.gen_core) == allowed.end()) {
        args.usage(fmt::format("--gen-core: core {} is not one this process may run on ({})", o.gen_core,
                               skyloft::format_core_list(allowed)));
      }
      generator_flags = true;
    } else if (args.is("--gen-wait")) {
      o.gen_wait = choice(args, "--gen-wait", std::pair{"sleep", GenWait::sleep}, std::pair{"spin", GenWait::spin});
      generator_flags = true;
    } else if (args.is("--generator")) {
      o.generator = choice(args, "--generator", std::pair{"thread", Generator::thread},
                           std::pair{"poller", Generator::poller});
      generator_flags = true;
    } else if (args.is("--slice-us")) {
      o.pool_slice_us = slice_us_value(args, "--slice-us");
      linux_flags = true;
    } else if (args.is("--seed")) {
      o.seed = static_cast<std::uint64_t>(args.long_value("--seed", 0, 1L << 62));
      generator_flags = true;
    } else {
      args.usage(fmt::format("unknown argument '{}'", args.arg()));
    }
  }
  if (o.inprocess) {
    if (network_flags) args.usage("--listen, --udp, --task-per and --seconds do not apply to --inprocess");
    if (o.rates.empty()) args.usage("--inprocess needs --rates");
  } else if (generator_flags) {
    args.usage("--rates, --mix, --arrival, --duration, --warmup, --drain, --stop-p99, --csv, --label, --seed, --gen-slice-us, --gen-core, --gen-wait and --generator need --inprocess");
  }
  if (o.mode == Mode::linux && skyloft_flags) {
    args.usage("--policy, --preempt, --quantum-us, --dispatcher-core, --spin-us and --task-per apply to --mode skyloft");
  }
  if (o.mode == Mode::skyloft && linux_flags) args.usage("--threads and --slice-us apply to --mode linux");
  if (o.generator == Generator::poller) {
    if (o.mode != Mode::skyloft) args.usage("--generator poller needs --mode skyloft (the runtime's polling thread)");
    if (o.gen_core >= 0 || o.gen_wait != GenWait::sleep || o.gen_slice_us != 0) {
      args.usage("--gen-core, --gen-wait and --gen-slice-us are for --generator thread");
    }
  }
  return o;
}

}  // namespace skyloft::synthetic
