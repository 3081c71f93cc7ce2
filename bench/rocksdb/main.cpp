// main.cpp - skyloft-rocksdb: a RocksDB server on skyloft or a Linux thread pool, in-process or over TCP/UDP
// (the synthetic server's modes, servers.hpp, with the request code of service.hpp).
#include <cstdio>
#include <stdexcept>

#include <fmt/core.h>

#include "mix.hpp"
#include "rocksdb_options.hpp"
#include "servers.hpp"
#include "service.hpp"

int main(int argc, char** argv) {
  using namespace skyloft::rocksdb_server;
  RocksdbOptions r = parse_rocksdb_options(argc, argv);
  std::unique_ptr<Database> db;
  try {
    db = Database::open(r.db);
  } catch (const std::runtime_error& e) {
    fmt::print(stderr, "skyloft-rocksdb: {}\n", e.what());
    return 1;
  }
  auto refuse = [&](const std::string& e) {
    fmt::print(stderr, "skyloft-rocksdb: {}\n", e);
    return 2;
  };
  if (!db->generated() && r.keys_given && r.db.keys != db->keys()) {
    return refuse(fmt::format("--keys {}: the database at {} holds {} keys", r.db.keys, db->path(), db->keys()));
  }
  if (!db->generated() && r.value_size_given && r.db.value_size != db->value_size()) {
    return refuse(fmt::format("--value-size {}: the database at {} holds {}-byte values", r.db.value_size, db->path(),
                              db->value_size()));
  }
  if (r.scan_len > db->keys()) {
    return refuse(fmt::format("--scan-len {} is more than the {} keys of the database at {}", r.scan_len, db->keys(), db->path()));
  }
  fmt::print("skyloft-rocksdb: database {} ({}): {} keys, {}-byte values; SCAN = {} entries\n", db->path(),
             db->generated() ? (r.db.path.empty() ? "generated, temporary" : "generated, kept") : "opened", db->keys(),
             db->value_size(), r.scan_len);
  const Service service(*db, r.scan_len);
  const ServiceTimes t = service.calibrate(r.calibrate_gets, r.calibrate_scans);
  // One line for people, one for scripts (bench/run-all passes the mix to skyloft-loadgen for its slowdown).
  fmt::print("skyloft-rocksdb: measured service times (median / p90 of {} GETs, {} SCANs on one thread): GET {:.2f} / "
             "{:.2f} us, SCAN {:.1f} / {:.1f} us; a GET's own p99.9: {:.2f} us (slowdown {:.1f} before any wait)\n",
             r.calibrate_gets, r.calibrate_scans, t.get_ns / 1e3, t.get_p90_ns / 1e3, t.scan_ns / 1e3, t.scan_p90_ns / 1e3,
             t.get_p999_ns / 1e3, static_cast<double>(t.get_p999_ns) / static_cast<double>(t.get_ns));
  const bool given = r.service_get_ns > 0;
  const std::string mix = fmt::format("rocksdb:{}ns:{}ns", given ? r.service_get_ns : t.get_ns,
                                      given ? r.service_scan_ns : t.scan_ns);
  fmt::print("skyloft-rocksdb: mix {}{}\n", mix, given ? " (--service)" : "");
  std::fflush(stdout);
  skyloft::synthetic::ServerOptions& o = r.server;
  o.mix = skyloft::loadgen::RequestMix::parse(mix);
  o.serve = [&service](const skyloft::wire::Request& q) { return service.serve(q); };
  return skyloft::synthetic::run_server(o);
}
