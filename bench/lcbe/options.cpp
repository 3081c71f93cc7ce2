// options.cpp - skyloft_lcbe's usage text and command-line parsing, and the server options of one run.
#include "options.hpp"

#include <unistd.h>

#include <algorithm>
#include <exception>

#include <fmt/format.h>

#include "skyloft/skyloft.hpp"
#include "spin.hpp"

namespace lcbe {

namespace {

constexpr const char* kUsage =
    "usage: {} [--quick] [--runs N] [--loads PCT,...] [--duration-ms MS] [--warmup-ms MS] [--cores LIST]\n"
    "          [--skyloftd PATH] [--csv PATH] [--png PATH]\n"
    "  LC + BE co-location: LC p50/p99, BE CPU share and core acquisition for each LC load (percent of\n"
    "  capacity = cores / mean service), under skyloftd (LC alone, LC + BE) and under Linux (BE at nice 19,\n"
    "  BE at SCHED_IDLE). Defaults: 3 runs, loads 10,20,...,90, 1000 ms points after 200 ms of warm-up, all\n"
    "  allowed cores. --quick: 1 run, loads 10,50,90, 300 ms points (CI). --png needs /usr/bin/python3 with\n"
    "  matplotlib (default: the CSV's path with .png, when --csv is given).\n";

}  // namespace

Plan parse_plan(int argc, char** argv) {
  Plan plan;
  bench::Args args(argc, argv, "skyloft_lcbe", kUsage);
  std::string loads_text;
  bool runs_set = false, duration_set = false, warmup_set = false;
  while (args.next()) {
    if (args.arg() == "--quick") {
      plan.quick = true;
    } else if (args.is("--runs")) {
      plan.runs = static_cast<int>(args.long_value("--runs", 1, 100));
      runs_set = true;
    } else if (args.is("--loads")) {
      loads_text = args.value();
    } else if (args.is("--duration-ms")) {
      plan.duration_ns = static_cast<std::uint64_t>(args.long_value("--duration-ms", 50, 600'000)) * 1'000'000;
      duration_set = true;
    } else if (args.is("--warmup-ms")) {
      plan.warmup_ns = static_cast<std::uint64_t>(args.long_value("--warmup-ms", 0, 60'000)) * 1'000'000;
      warmup_set = true;
    } else if (args.is("--cores")) {
      plan.cores_text = args.value();
      try {
        plan.cores = skyloft::parse_core_list(plan.cores_text);
      } catch (const std::exception& e) {
        args.usage(fmt::format("--cores '{}': {}", plan.cores_text, e.what()));
      }
    } else if (args.is("--skyloftd")) {
      plan.skyloftd = args.value();
    } else if (args.is("--csv")) {
      plan.csv = args.value();
    } else if (args.is("--png")) {
      plan.png = args.value();
    } else {
      args.usage("unknown argument '" + args.arg() + "'");
    }
  }
  if (plan.quick) {
    if (!runs_set) plan.runs = 1;
    if (!duration_set) plan.duration_ns = 300'000'000;
    if (!warmup_set) plan.warmup_ns = 100'000'000;
    plan.drain_ns = 200'000'000;
    if (loads_text.empty()) loads_text = "10,50,90";
  }
  if (loads_text.empty()) loads_text = "10,20,30,40,50,60,70,80,90";
  for (std::size_t pos = 0; pos <= loads_text.size();) {
    const std::size_t comma = std::min(loads_text.find(',', pos), loads_text.size());
    plan.loads.push_back(args.parse_double("--loads", loads_text.substr(pos, comma - pos), 1, 100) / 100.0);
    pos = comma + 1;
  }
  if (plan.loads.size() > kMaxPoints) args.usage(fmt::format("--loads: at most {} points", kMaxPoints));
  plan.allowed = skyloft::allowed_cores();
  const std::vector<int>& allowed = plan.allowed;
  if (plan.cores.empty()) plan.cores = allowed;
  for (int c : plan.cores) {
    if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) {
      args.usage(fmt::format("--cores: core {} is not one this process may run on ({})", c, skyloft::format_core_list(allowed)));
    }
  }
  if (plan.cores.empty() || plan.cores.size() > kMaxCores) args.usage("--cores: need 1..64 cores");
  plan.cores_text = skyloft::format_core_list(plan.cores);
  if (access(plan.skyloftd.c_str(), X_OK) != 0) args.usage(fmt::format("--skyloftd: cannot run '{}'", plan.skyloftd));
  if (plan.png.empty() && !plan.csv.empty()) {
    plan.png = plan.csv;
    const std::size_t dot = plan.png.rfind('.');
    if (dot != std::string::npos && plan.png.find('/', dot) == std::string::npos) plan.png.resize(dot);
    plan.png += ".png";
  }
  return plan;
}

syn::ServerOptions point_options(const Plan& plan, int run) {
  syn::ServerOptions o;
  o.serve = syn::serve_request;  // the synthetic spin
  o.mix = skyloft::loadgen::RequestMix::parse(plan.mix_text);
  o.warmup_ns = plan.warmup_ns;
  o.duration_ns = plan.duration_ns;
  o.drain_ns = plan.drain_ns;
  o.seed = static_cast<std::uint64_t>(run) + 1;
  o.threads = static_cast<int>(plan.cores.size());
  return o;
}

}  // namespace lcbe
