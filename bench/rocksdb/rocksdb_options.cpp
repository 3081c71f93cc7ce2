// rocksdb_options.cpp - skyloft-rocksdb's command line (rocksdb_options.hpp).
#include "rocksdb_options.hpp"

#include <algorithm>

#include <fmt/core.h>

#include "bench_common.hpp"
#include "units.hpp"

namespace skyloft::rocksdb_server {
namespace {

constexpr std::string_view kAbout =
    "  RocksDB server: GET = point lookup of a random key, SCAN = a range iteration of --scan-len entries, on\n"
    "  a database it generates at start (librocksdb). Runs on skyloft or on a Linux thread pool.\n";
constexpr std::string_view kDatabaseUsage =
    "  database:          --keys N (200000) --value-size B (64, >= 8) --scan-len N (2000, <= keys)\n"
    "                     --db PATH (open the database there, or generate it there and keep it;\n"
    "                     default: generate into a temporary directory removed at exit)\n"
    "                     --calibrate GETS:SCANS (20000:200: requests timed at start for the service times)\n"
    "                     --service GET:SCAN (durations: the service times of the slowdown, instead of the\n"
    "                     measured ones, so that several runs share them)\n"
    "  --inprocess draws 50% GET / 50% SCAN with the measured service times (no --mix).\n";

constexpr std::uint64_t kMaxKeys = 100'000'000;

}  // namespace

RocksdbOptions parse_rocksdb_options(int argc, char** argv) {
  RocksdbOptions r;
  synthetic::ServerProgram p;
  p.name = "skyloft-rocksdb";
  p.about = kAbout;
  p.extra_usage = kDatabaseUsage;
  p.mix_flag = false;
  p.parse_flag = [&](bench::Args& args) {
    if (args.is("--keys")) {
      r.db.keys = static_cast<std::uint64_t>(args.long_value("--keys", 1, static_cast<long>(kMaxKeys)));
      r.keys_given = true;
    } else if (args.is("--value-size")) {
      r.db.value_size = static_cast<std::uint32_t>(args.long_value("--value-size", 8, 1 << 20));
      r.value_size_given = true;
    } else if (args.is("--scan-len")) {
      r.scan_len = static_cast<std::uint32_t>(args.long_value("--scan-len", 1, static_cast<long>(kMaxKeys)));
    } else if (args.is("--db")) {
      r.db.path = args.value();
      if (r.db.path.empty()) args.usage("--db needs a directory");
    } else if (args.is("--calibrate")) {
      const std::string v = args.value();
      int g = 0, s = 0;
      char tail = 0;
      if (std::sscanf(v.c_str(), "%d:%d%c", &g, &s, &tail) != 2 || g < 1 || s < 1 || g > 10'000'000 || s > 100'000) {
        args.usage(fmt::format("--calibrate: '{}' is not GETS:SCANS (1..10000000 : 1..100000)", v));
      }
      r.calibrate_gets = g;
      r.calibrate_scans = s;
    } else if (args.is("--service")) {
      const std::string v = args.value();
      const auto colon = v.find(':');
      try {
        if (colon == std::string::npos) throw std::invalid_argument("no ':'");
        r.service_get_ns = loadgen::parse_duration_ns(v.substr(0, colon));
        r.service_scan_ns = loadgen::parse_duration_ns(v.substr(colon + 1));
      } catch (const std::invalid_argument& e) {
        args.usage(fmt::format("--service: '{}' is not GET:SCAN durations ({})", v, e.what()));
      }
    } else if (args.is("--mix")) {
      args.usage("--mix: skyloft-rocksdb draws 50% GET / 50% SCAN itself, with the service times it measures at start");
    } else {
      return false;
    }
    return true;
  };
  r.server = synthetic::parse_server_options(argc, argv, p);
  auto fail = [&](const std::string& e) {
    bench::Args(argc, argv, "skyloft-rocksdb", "").usage(e);
  };
  // An existing --db brings its own size (checked once it is open); a generated one must hold a whole scan.
  if (r.db.path.empty() && r.scan_len > r.db.keys) {
    fail(fmt::format("--scan-len {} is more than the {} keys of the database (--keys)", r.scan_len, r.db.keys));
  }
  auto& libs = r.server.config.no_preempt_libs;
  if (std::find(libs.begin(), libs.end(), "librocksdb") == libs.end()) libs.push_back("librocksdb");
  return r;
}

}  // namespace skyloft::rocksdb_server
