// database.hpp - the RocksDB server's data: a database generated at start (or an existing one), point
// lookups and range scans whose results can be checked without keeping the data set.
//
// Scheme (the only one the server reads):
//   key i    "key" + the index in 12 decimal digits, so byte order is index order (a scan walks i, i+1, ...)
//   value i  value_size bytes: the index as 8 little-endian bytes, then a filler byte derived from it
//   "meta"   "keys=N value_size=S" (sorts after every key), how a reopened database describes itself
// Generated databases are written without a WAL, flushed and compacted to one level, uncompressed, with a
// bloom filter and a block cache large enough for the whole set: a GET is a cached point lookup (~1 us),
// a SCAN an iteration over cached blocks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rocksdb {
class DB;
}

namespace skyloft::rocksdb_server {

struct DatabaseOptions {
  std::uint64_t keys = 200'000;      // --keys: generated entries
  std::uint32_t value_size = 64;     // --value-size: bytes per value (at least 8: the index)
  std::string path;                  // --db: "" generates into a temporary directory removed at exit
};

class Database {
 public:
  // Opens the database at o.path when it holds one of this scheme, else generates it there (kept); with no
  // path, generates into a new temporary directory. Throws std::runtime_error with a precise message.
  static std::unique_ptr<Database> open(const DatabaseOptions& o);
  ~Database();  // closes the database, then removes a temporary directory
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  std::uint64_t keys() const { return keys_; }
  std::uint32_t value_size() const { return value_size_; }
  const std::string& path() const { return path_; }
  bool generated() const { return generated_; }

  // Point lookup of key `index`: whether it was found with the value the scheme gives it.
  bool get(std::uint64_t index) const;
  // The value stored under key `index` ("" when absent).
  std::string value_of(std::uint64_t index) const;
  // Iterates `len` entries from key `first`, with skyloft::preempt_point() between iterator steps (RocksDB's
  // own code has none; this loop is ours). Returns how many entries were the expected key's, in order.
  std::uint64_t scan(std::uint64_t first, std::uint32_t len) const;

  static std::string key_for(std::uint64_t index);
  static std::string value_for(std::uint64_t index, std::uint32_t value_size);
  // Whether `v` is value_for(index, value_size).
  static bool value_matches(std::uint64_t index, std::string_view v, std::uint32_t value_size);

 private:
  Database() = default;
  ::rocksdb::DB* db_ = nullptr;
  std::uint64_t keys_ = 0;
  std::uint32_t value_size_ = 0;
  std::string path_;
  bool generated_ = false, temporary_ = false;
};

}  // namespace skyloft::rocksdb_server
