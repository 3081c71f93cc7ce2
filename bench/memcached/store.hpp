// store.hpp - the memcached server's items: a sharded hash table with cas ids, expiry, flush_all and an
// LRU per shard under a memory limit.
//
// Invariants:
//   - Each shard's mutex protects its index, LRU list, byte count and counters; no call holds two shards'
//     locks, and no lock is held across a call into the caller except the visitor of get() (which must
//     not call the store).
//   - An item is live unless it has expired (exptime < 0, or 0 < exptime <= now), was flushed (its cas id
//     is at most the last immediate flush's, or a delayed flush is due and the item was stored by then), or
//     was evicted. A dead item is never returned and is unlinked when a call finds it.
//   - cas ids come from one counter (next_cas_, any thread, relaxed: only uniqueness matters), so every
//     stored version has a different id, across shards too.
//   - A shard's bytes never exceed its share of the memory limit after a call returns: inserting evicts
//     from its LRU tail first (least recently stored or fetched).
// Times are whole seconds of the caller's clock (unix time); the store never reads a clock itself.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace skyloft::memcached {

struct ItemView {
  std::string_view key;
  std::string_view data;
  std::uint32_t flags;
  std::uint64_t cas;
};

enum class StoreMode { set, add, replace, append, prepend, cas };
enum class StoreResult { stored, not_stored, exists, not_found, no_memory };
enum class DeltaResult { ok, not_found, non_numeric, no_memory };

struct StoreCounters {
  std::uint64_t curr_items = 0;
  std::uint64_t total_items = 0;  // successful stores
  std::uint64_t bytes = 0;        // what the items cost against the limit
  std::uint64_t evictions = 0;    // live items dropped for room
  std::uint64_t reclaimed = 0;    // dead (expired or flushed) items unlinked
};

class Store {
 public:
  struct Options {
    std::size_t memory_limit = 64u << 20;  // bytes (-m MB)
    std::size_t shards = 16;
  };
  explicit Store(Options o);
  Store() : Store(Options{}) {}

  // Stores per `mode` (protocol.txt's set/add/replace/append/prepend/cas). append/prepend keep the item's
  // flags and exptime; cas needs `cas_unique` to match. `exptime` is absolute (0: never, < 0: dead now).
  StoreResult store(StoreMode mode, std::string_view key, std::string_view data, std::uint32_t flags,
                    std::int64_t exptime, std::uint64_t cas_unique, std::int64_t now);

  // Calls visit(const ItemView&) under the shard's lock if `key` is live and returns true; bumps it in the
  // LRU. With `touch_exptime`, sets the item's exptime first (gat).
  template <class Visit>
  bool get(std::string_view key, std::int64_t now, Visit&& visit, std::optional<std::int64_t> touch_exptime = {});

  bool remove(std::string_view key, std::int64_t now);
  // incr/decr: the item's data must be a decimal number below 2^64 (spaces around it allowed); incr wraps
  // modulo 2^64, decr stops at 0. *value receives the new value.
  DeltaResult delta(std::string_view key, bool incr, std::uint64_t by, std::int64_t now, std::uint64_t* value);
  bool touch(std::string_view key, std::int64_t exptime, std::int64_t now);
  // flush_all: every item stored so far dies now (delay_s 0) or at now + delay_s.
  void flush(std::int64_t now, std::int64_t delay_s);

  StoreCounters counters() const;
  std::size_t memory_limit() const { return limit_; }

 private:
  struct Item {
    std::string key;
    std::string data;
    std::uint32_t flags = 0;
    std::int64_t exptime = 0;
    std::int64_t stored_at = 0;
    std::uint64_t cas = 0;
  };
  using Lru = std::list<Item>;  // front: most recent
  struct Shard {
    mutable std::mutex lock;
    Lru lru;                                                  // protected by lock
    std::unordered_map<std::string_view, Lru::iterator> index;  // keys point into the list's items
    std::size_t bytes = 0;
    std::uint64_t total_items = 0, evictions = 0, reclaimed = 0;
  };

  static std::size_t cost(std::size_t key, std::size_t data);
  Shard& shard_of(std::string_view key);
  bool live_locked(const Item& it, std::int64_t now) const;
  // The live item of `key`, or end (a dead one is unlinked on the way).
  Lru::iterator find_locked(Shard& s, std::string_view key, std::int64_t now);
  void unlink_locked(Shard& s, Lru::iterator it);
  // Evicts from the LRU tail until `extra` more bytes fit; false if they cannot fit at all.
  bool make_room_locked(Shard& s, std::size_t extra);
  std::uint64_t next_cas() { return next_cas_.fetch_add(1, std::memory_order_relaxed); }

  std::size_t limit_;
  std::size_t shard_limit_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<std::uint64_t> next_cas_{1};
  // flush_all: items with cas <= flushed_cas_ are dead; items stored at or before flush_at_ are dead once
  // flush_at_ (when not 0) has come. Written by flush() (any thread), read by every lookup.
  std::atomic<std::uint64_t> flushed_cas_{0};
  std::atomic<std::int64_t> flush_at_{0};
};

template <class Visit>
bool Store::get(std::string_view key, std::int64_t now, Visit&& visit, std::optional<std::int64_t> touch_exptime) {
  Shard& s = shard_of(key);
  std::lock_guard g(s.lock);
  const auto it = find_locked(s, key, now);
  if (it == s.lru.end()) return false;
  if (touch_exptime) it->exptime = *touch_exptime;
  s.lru.splice(s.lru.begin(), s.lru, it);
  visit(ItemView{it->key, it->data, it->flags, it->cas});
  return true;
}

}  // namespace skyloft::memcached
