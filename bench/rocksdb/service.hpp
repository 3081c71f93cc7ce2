// service.hpp - the RocksDB server's request code, shared by every mode, and its service-time calibration.
//
// The wire request's op chooses the work (synthetic_wire.hpp): GET is a point lookup of a key drawn from
// the request, SCAN a range iteration of scan_len entries from such a key. The key is a hash of the request's
// id and send time: no random state (no thread-local generator that a task moving between workers would
// share), and a request always reads the same key. The service_ns field is the client's expectation, used
// for its slowdown; the server does not interpret it. The response is ok when every entry read was the one
// the scheme gives that key, rejected otherwise.
#pragma once

#include <cstdint>

#include "database.hpp"
#include "synthetic_wire.hpp"

namespace skyloft::rocksdb_server {

struct ServiceTimes {
  std::uint64_t get_ns = 0, scan_ns = 0;  // medians
  std::uint64_t get_p90_ns = 0, scan_p90_ns = 0;
  // A GET's own p99.9 on an idle thread: the floor under the p99.9 slowdown that no scheduler removes.
  std::uint64_t get_p999_ns = 0;
};

class Service {
 public:
  Service(const Database& db, std::uint32_t scan_len) : db_(db), scan_len_(scan_len) {}

  wire::Response serve(const wire::Request& r) const;
  // The first key of the request's GET or SCAN.
  std::uint64_t key_of(const wire::Request& r) const;
  std::uint32_t scan_len() const { return scan_len_; }

  // Runs `gets` GETs and `scans` SCANs on the calling thread (after one pass over the whole set, so every
  // block is cached) and returns their median and p90 service times.
  ServiceTimes calibrate(int gets, int scans) const;

 private:
  const Database& db_;
  std::uint32_t scan_len_;
};

}  // namespace skyloft::rocksdb_server
