// database.cpp - generating, opening, reading and removing the server's database (database.hpp).
#include "database.hpp"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <system_error>

#include <fmt/core.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "skyloft/preempt.hpp"

namespace skyloft::rocksdb_server {
namespace {

constexpr char kMetaKey[] = "meta";
constexpr std::uint64_t kBatch = 10'000;

std::uint64_t index_in(std::string_view v) {
  std::uint64_t i = 0;
  for (std::size_t b = 0; b < 8; ++b) i |= static_cast<std::uint64_t>(static_cast<unsigned char>(v[b])) << (8 * b);
  return i;
}

::rocksdb::Options db_options(std::uint64_t keys, std::uint32_t value_size) {
  ::rocksdb::Options o;
  o.create_if_missing = true;
  o.compression = ::rocksdb::kNoCompression;
  o.max_open_files = -1;
  ::rocksdb::BlockBasedTableOptions t;
  // Room for every block of the set (keys ~15 B + value + per-entry overhead), so reads never touch the file.
  const std::size_t bytes = static_cast<std::size_t>(keys) * (value_size + 64) + (64u << 20);
  t.block_cache = ::rocksdb::NewLRUCache(bytes);
  t.filter_policy.reset(::rocksdb::NewBloomFilterPolicy(10));
  t.cache_index_and_filter_blocks = false;  // held by the table readers: a lookup takes no cache lock for them
  o.table_factory.reset(::rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

void check(const ::rocksdb::Status& s, const std::string& what) {
  if (!s.ok()) throw std::runtime_error(fmt::format("{}: {}", what, s.ToString()));
}

// "keys=N value_size=S" -> (N, S); false when it is not that.
bool parse_meta(const std::string& m, std::uint64_t* keys, std::uint32_t* value_size) {
  unsigned long long k = 0;
  unsigned v = 0;
  char tail = 0;
  if (std::sscanf(m.c_str(), "keys=%llu value_size=%u%c", &k, &v, &tail) != 2) return false;
  *keys = k;
  *value_size = v;
  return k > 0 && v >= 8;
}

// key_for without an allocation: "key" + 12 digits into `buf`, which the returned slice points into.
constexpr std::size_t kKeyLen = 15;
::rocksdb::Slice key_into(std::uint64_t index, char (&buf)[kKeyLen]) {
  buf[0] = 'k';
  buf[1] = 'e';
  buf[2] = 'y';
  for (std::size_t d = kKeyLen; d-- > 3; index /= 10) buf[d] = static_cast<char>('0' + index % 10);
  return {buf, kKeyLen};
}

}  // namespace

std::string Database::key_for(std::uint64_t index) {
  char buf[kKeyLen];
  return key_into(index, buf).ToString();
}

std::string Database::value_for(std::uint64_t index, std::uint32_t value_size) {
  std::string v(value_size, static_cast<char>('a' + index % 26));
  for (std::size_t b = 0; b < 8; ++b) v[b] = static_cast<char>(index >> (8 * b));
  return v;
}

bool Database::value_matches(std::uint64_t index, std::string_view v, std::uint32_t value_size) {
  // The index and the last filler byte: enough to tell one entry from another, cheap inside a scan.
  return v.size() == value_size && index_in(v) == index && v.back() == static_cast<char>('a' + index % 26);
}

std::unique_ptr<Database> Database::open(const DatabaseOptions& o) {
  namespace fs = std::filesystem;
  if (o.value_size < 8) throw std::runtime_error(fmt::format("value size {} is below 8 bytes", o.value_size));
  std::unique_ptr<Database> d(new Database());
  std::error_code ec;
  if (o.path.empty()) {
    std::string tmpl = (fs::temp_directory_path(ec) / "skyloft-rocksdb-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error(fmt::format("mkdtemp {}: {}", tmpl, std::strerror(errno)));
    d->path_ = tmpl;
    d->temporary_ = true;
  } else {
    d->path_ = o.path;
    if (fs::exists(d->path_, ec) && !fs::is_directory(d->path_, ec)) {
      throw std::runtime_error(fmt::format("--db {}: not a directory", d->path_));
    }
  }
  const bool existing = fs::exists(fs::path(d->path_) / "CURRENT", ec);
  std::uint64_t keys = o.keys;
  std::uint32_t value_size = o.value_size;
  if (existing) {
    // Open once with default table options to read the meta entry, then with a cache sized for the set.
    ::rocksdb::DB* probe = nullptr;
    ::rocksdb::Options po;
    check(::rocksdb::DB::OpenForReadOnly(po, d->path_, &probe), fmt::format("open {}", d->path_));
    std::string meta;
    const auto s = probe->Get(::rocksdb::ReadOptions(), kMetaKey, &meta);
    delete probe;
    if (!s.ok() || !parse_meta(meta, &keys, &value_size)) {
      throw std::runtime_error(fmt::format("--db {}: not a database of skyloft-rocksdb (no valid \"meta\" entry)", d->path_));
    }
  }
  check(::rocksdb::DB::Open(db_options(keys, value_size), d->path_, &d->db_), fmt::format("open {}", d->path_));
  d->keys_ = keys;
  d->value_size_ = value_size;
  if (!existing) {
    ::rocksdb::WriteOptions w;
    w.disableWAL = true;  // flushed below; a crash meanwhile leaves no CURRENT-with-meta, so it regenerates
    for (std::uint64_t first = 0; first < keys; first += kBatch) {
      ::rocksdb::WriteBatch b;
      for (std::uint64_t i = first; i < std::min(keys, first + kBatch); ++i) b.Put(key_for(i), value_for(i, value_size));
      check(d->db_->Write(w, &b), "write");
    }
    check(d->db_->Put(w, kMetaKey, fmt::format("keys={} value_size={}", keys, value_size)), "write meta");
    check(d->db_->Flush(::rocksdb::FlushOptions()), "flush");
    check(d->db_->CompactRange(::rocksdb::CompactRangeOptions(), nullptr, nullptr), "compact");
    d->generated_ = true;
  }
  return d;
}

Database::~Database() {
  if (db_ != nullptr) {
    (void)db_->Close();
    delete db_;
  }
  if (temporary_) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

bool Database::get(std::uint64_t index) const {
  char key[kKeyLen];
  ::rocksdb::PinnableSlice v;  // the value stays in the block cache: no copy
  if (!db_->Get(::rocksdb::ReadOptions(), db_->DefaultColumnFamily(), key_into(index, key), &v).ok()) return false;
  return value_matches(index, v.ToStringView(), value_size_);
}

std::string Database::value_of(std::uint64_t index) const {
  std::string v;
  return db_->Get(::rocksdb::ReadOptions(), key_for(index), &v).ok() ? v : std::string();
}

std::uint64_t Database::scan(std::uint64_t first, std::uint32_t len) const {
  std::unique_ptr<::rocksdb::Iterator> it(db_->NewIterator(::rocksdb::ReadOptions()));
  std::uint64_t good = 0;
  std::uint32_t n = 0;
  char key[kKeyLen];
  for (it->Seek(key_into(first, key)); it->Valid() && n < len; it->Next(), ++n) {
    // The iterator's state lives in the task (heap and stack), so switching here is safe; RocksDB holds no
    // lock between two calls.
    skyloft::preempt_point();
    good += value_matches(first + n, it->value().ToStringView(), value_size_) ? 1 : 0;
  }
  return good;
}

}  // namespace skyloft::rocksdb_server
