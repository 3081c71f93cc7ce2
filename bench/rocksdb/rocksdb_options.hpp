// rocksdb_options.hpp - skyloft-rocksdb's command line: the synthetic servers' options (modes, runtime,
// pool, network, in-process generator) plus the database's.
#pragma once

#include <cstdint>

#include "database.hpp"
#include "server_options.hpp"

namespace skyloft::rocksdb_server {

struct RocksdbOptions {
  synthetic::ServerOptions server;  // its mix is set at start from the measured service times
  DatabaseOptions db;
  std::uint32_t scan_len = 2000;  // --scan-len: entries per SCAN
  int calibrate_gets = 20000, calibrate_scans = 200;
  // --service GET:SCAN: the service times the in-process slowdown divides by, instead of the measured ones
  // (a series of runs then shares one denominator); 0: measured.
  std::uint64_t service_get_ns = 0, service_scan_ns = 0;
  bool keys_given = false, value_size_given = false;  // an existing --db must then match them
};

// Parses argv; a bad option prints "skyloft-rocksdb: <precise error>" and the usage, then exits with 2.
// The runtime gets "librocksdb" among its no-preempt libraries, whatever the mechanism: RocksDB takes
// mutexes inside a lookup and keeps per-thread state between two of its own calls (the thread-local
// SuperVersion cache: taken at the start of a Get or NewIterator, returned at its end, asserting that it is
// the same thread's slot), so a task must never be switched inside it. Not only the signal mechanisms
// interrupt: the blocked-thread hand-off signals a thread the kernel descheduled and redirects its task at
// an async safe point even under flag and none (seen as that assertion failing on the loaded 2-core VM). A
// signal landing in RocksDB defers to the scan loop's next preempt point.
RocksdbOptions parse_rocksdb_options(int argc, char** argv);

}  // namespace skyloft::rocksdb_server
