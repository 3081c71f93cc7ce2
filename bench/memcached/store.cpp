// store.cpp - the sharded item table (store.hpp).
#include "store.hpp"

#include <algorithm>
#include <charconv>
#include <functional>

namespace skyloft::memcached {

namespace {
// What an item costs beyond its key and data: the list node, the index entry, the item's fields.
constexpr std::size_t kItemOverhead = 96;

// The decimal number incr/decr works on: digits with optional spaces around them (memcached's strtoull
// skips leading ones; its own in-place decr pads with trailing ones).
bool parse_counter(std::string_view data, std::uint64_t* out) {
  std::size_t b = 0, e = data.size();
  while (b < e && data[b] == ' ') ++b;
  while (e > b && data[e - 1] == ' ') --e;
  if (b == e) return false;
  const auto [end, ec] = std::from_chars(data.data() + b, data.data() + e, *out);
  return ec == std::errc() && end == data.data() + e;
}
}  // namespace

Store::Store(Options o) : limit_(o.memory_limit) {
  const std::size_t n = std::max<std::size_t>(1, o.shards);
  shard_limit_ = std::max<std::size_t>(1, limit_ / n);
  shards_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>());
}

std::size_t Store::cost(std::size_t key, std::size_t data) { return kItemOverhead + key + data; }

Store::Shard& Store::shard_of(std::string_view key) {
  const std::size_t h = std::hash<std::string_view>{}(key);
  return *shards_[(h >> 7) % shards_.size()];  // the low bits pick the index's bucket
}

bool Store::live_locked(const Item& it, std::int64_t now) const {
  if (it.exptime < 0 || (it.exptime > 0 && it.exptime <= now)) return false;
  if (it.cas <= flushed_cas_.load(std::memory_order_acquire)) return false;
  const std::int64_t at = flush_at_.load(std::memory_order_acquire);
  return at == 0 || now < at || it.stored_at > at;
}

Store::Lru::iterator Store::find_locked(Shard& s, std::string_view key, std::int64_t now) {
  const auto f = s.index.find(key);
  if (f == s.index.end()) return s.lru.end();
  if (!live_locked(*f->second, now)) {
    ++s.reclaimed;
    unlink_locked(s, f->second);
    return s.lru.end();
  }
  return f->second;
}

void Store::unlink_locked(Shard& s, Lru::iterator it) {
  s.bytes -= cost(it->key.size(), it->data.size());
  s.index.erase(std::string_view(it->key));
  s.lru.erase(it);
}

bool Store::make_room_locked(Shard& s, std::size_t extra) {
  if (extra > shard_limit_) return false;
  while (s.bytes + extra > shard_limit_ && !s.lru.empty()) {
    ++s.evictions;
    unlink_locked(s, std::prev(s.lru.end()));
  }
  return true;
}

StoreResult Store::store(StoreMode mode, std::string_view key, std::string_view data, std::uint32_t flags,
                         std::int64_t exptime, std::uint64_t cas_unique, std::int64_t now) {
  Shard& s = shard_of(key);
  std::lock_guard g(s.lock);
  auto it = find_locked(s, key, now);
  const bool exists = it != s.lru.end();
  switch (mode) {
    case StoreMode::add:
      if (exists) {
        s.lru.splice(s.lru.begin(), s.lru, it);  // memcached bumps the item an add failed on
        return StoreResult::not_stored;
      }
      break;
    case StoreMode::replace:
    case StoreMode::append:
    case StoreMode::prepend:
      if (!exists) return StoreResult::not_stored;
      break;
    case StoreMode::cas:
      if (!exists) return StoreResult::not_found;
      if (it->cas != cas_unique) return StoreResult::exists;
      break;
    case StoreMode::set:
      break;
  }
  if (mode == StoreMode::append || mode == StoreMode::prepend) {
    const std::size_t grow = data.size();
    // Room is made with the item itself at the LRU front, so it is the last one evicted.
    s.lru.splice(s.lru.begin(), s.lru, it);
    if (cost(key.size(), it->data.size() + grow) > shard_limit_) return StoreResult::no_memory;
    while (s.bytes + grow > shard_limit_ && std::prev(s.lru.end()) != it) {
      ++s.evictions;
      unlink_locked(s, std::prev(s.lru.end()));
    }
    if (mode == StoreMode::append) it->data.append(data);
    else it->data.insert(0, data);
    s.bytes += grow;
    it->cas = next_cas();
    it->stored_at = now;
    ++s.total_items;
    return StoreResult::stored;
  }
  if (exists) unlink_locked(s, it);
  const std::size_t c = cost(key.size(), data.size());
  if (!make_room_locked(s, c)) return StoreResult::no_memory;
  s.lru.push_front(Item{std::string(key), std::string(data), flags, exptime, now, next_cas()});
  s.index.emplace(std::string_view(s.lru.front().key), s.lru.begin());
  s.bytes += c;
  ++s.total_items;
  return StoreResult::stored;
}

bool Store::remove(std::string_view key, std::int64_t now) {
  Shard& s = shard_of(key);
  std::lock_guard g(s.lock);
  const auto it = find_locked(s, key, now);
  if (it == s.lru.end()) return false;
  unlink_locked(s, it);
  return true;
}

DeltaResult Store::delta(std::string_view key, bool incr, std::uint64_t by, std::int64_t now, std::uint64_t* value) {
  Shard& s = shard_of(key);
  std::lock_guard g(s.lock);
  const auto it = find_locked(s, key, now);
  if (it == s.lru.end()) return DeltaResult::not_found;
  std::uint64_t v = 0;
  if (!parse_counter(it->data, &v)) return DeltaResult::non_numeric;
  v = incr ? v + by : (v > by ? v - by : 0);  // unsigned: incr wraps modulo 2^64
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  const std::size_t old_size = it->data.size(), new_size = static_cast<std::size_t>(end - buf);
  s.lru.splice(s.lru.begin(), s.lru, it);
  if (new_size > old_size) {
    while (s.bytes + (new_size - old_size) > shard_limit_ && std::prev(s.lru.end()) != it) {
      ++s.evictions;
      unlink_locked(s, std::prev(s.lru.end()));
    }
  }
  it->data.assign(buf, new_size);
  s.bytes = s.bytes - old_size + new_size;
  it->cas = next_cas();
  *value = v;
  return DeltaResult::ok;
}

bool Store::touch(std::string_view key, std::int64_t exptime, std::int64_t now) {
  Shard& s = shard_of(key);
  std::lock_guard g(s.lock);
  const auto it = find_locked(s, key, now);
  if (it == s.lru.end()) return false;
  it->exptime = exptime;
  s.lru.splice(s.lru.begin(), s.lru, it);
  return true;
}

void Store::flush(std::int64_t now, std::int64_t delay_s) {
  if (delay_s <= 0) {
    // Every id handed out so far is below the counter's current value.
    flushed_cas_.store(next_cas_.load(std::memory_order_relaxed) - 1, std::memory_order_release);
    flush_at_.store(0, std::memory_order_release);  // a newer flush_all replaces a pending one
  } else {
    flush_at_.store(now + delay_s, std::memory_order_release);
  }
}

StoreCounters Store::counters() const {
  StoreCounters c;
  for (const auto& s : shards_) {
    std::lock_guard g(s->lock);
    c.curr_items += s->index.size();
    c.bytes += s->bytes;
    c.total_items += s->total_items;
    c.evictions += s->evictions;
    c.reclaimed += s->reclaimed;
  }
  return c;
}

}  // namespace skyloft::memcached
