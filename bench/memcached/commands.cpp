// commands.cpp - request -> store operation -> reply (commands.hpp).
#include "commands.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <ctime>

#include <fmt/format.h>

namespace skyloft::memcached {
namespace {

constexpr std::int64_t kMaxRelativeExptime = 60 * 60 * 24 * 30;  // 30 days

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}

void append_line(std::string& out, std::string_view line) {
  out.append(line);
  out.append("\r\n");
}

// "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n"
void append_value(std::string& out, const ItemView& it, bool with_cas) {
  out.append("VALUE ");
  out.append(it.key);
  out.push_back(' ');
  append_number(out, it.flags);
  out.push_back(' ');
  append_number(out, it.data.size());
  if (with_cas) {
    out.push_back(' ');
    append_number(out, it.cas);
  }
  out.append("\r\n");
  out.append(it.data);
  out.append("\r\n");
}

StoreMode store_mode(Command c) {
  switch (c) {
    case Command::add: return StoreMode::add;
    case Command::replace: return StoreMode::replace;
    case Command::append: return StoreMode::append;
    case Command::prepend: return StoreMode::prepend;
    case Command::cas: return StoreMode::cas;
    default: return StoreMode::set;
  }
}

void append_stat(std::string& out, std::string_view name, auto value) {
  fmt::format_to(std::back_inserter(out), "STAT {} {}\r\n", name, value);
}

double seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

void append_stats(std::string& out, ServerState& st) {
  const std::int64_t now = st.now();
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const StoreCounters sc = st.store.counters();
  const Stats& s = st.stats;
  auto v = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  append_stat(out, "pid", ::getpid());
  append_stat(out, "uptime", now - st.started);
  append_stat(out, "time", now);
  append_stat(out, "version", kVersion);
  append_stat(out, "pointer_size", 8 * sizeof(void*));
  append_stat(out, "rusage_user", fmt::format("{:.6f}", seconds(ru.ru_utime)));
  append_stat(out, "rusage_system", fmt::format("{:.6f}", seconds(ru.ru_stime)));
  append_stat(out, "curr_connections", v(s.curr_connections));
  append_stat(out, "total_connections", v(s.total_connections));
  append_stat(out, "cmd_get", v(s.cmd_get));
  append_stat(out, "cmd_set", v(s.cmd_set));
  append_stat(out, "cmd_flush", v(s.cmd_flush));
  append_stat(out, "cmd_touch", v(s.cmd_touch));
  append_stat(out, "get_hits", v(s.get_hits));
  append_stat(out, "get_misses", v(s.get_misses));
  append_stat(out, "delete_misses", v(s.delete_misses));
  append_stat(out, "delete_hits", v(s.delete_hits));
  append_stat(out, "incr_misses", v(s.incr_misses));
  append_stat(out, "incr_hits", v(s.incr_hits));
  append_stat(out, "decr_misses", v(s.decr_misses));
  append_stat(out, "decr_hits", v(s.decr_hits));
  append_stat(out, "cas_misses", v(s.cas_misses));
  append_stat(out, "cas_hits", v(s.cas_hits));
  append_stat(out, "cas_badval", v(s.cas_badval));
  append_stat(out, "touch_hits", v(s.touch_hits));
  append_stat(out, "touch_misses", v(s.touch_misses));
  append_stat(out, "store_too_large", v(s.store_too_large));
  append_stat(out, "store_no_memory", v(s.store_no_memory));
  append_stat(out, "bytes_read", v(s.bytes_read));
  append_stat(out, "bytes_written", v(s.bytes_written));
  append_stat(out, "limit_maxbytes", st.settings.memory_limit);
  append_stat(out, "threads", st.settings.threads);
  append_stat(out, "bytes", sc.bytes);
  append_stat(out, "curr_items", sc.curr_items);
  append_stat(out, "total_items", sc.total_items);
  append_stat(out, "evictions", sc.evictions);
  append_stat(out, "reclaimed", sc.reclaimed);
  out.append("END\r\n");
}

void append_settings(std::string& out, ServerState& st) {
  append_stat(out, "maxbytes", st.settings.memory_limit);
  append_stat(out, "tcpport", st.settings.port);
  append_stat(out, "udpport", 0);
  append_stat(out, "verbosity", st.verbosity.load(std::memory_order_relaxed));
  append_stat(out, "evictions", "on");
  append_stat(out, "num_threads", st.settings.threads);
  append_stat(out, "cas_enabled", "yes");
  append_stat(out, "item_size_max", st.settings.max_item_size);
  append_stat(out, "flush_enabled", "yes");
  out.append("END\r\n");
}

void execute_retrieval(const Request& req, ServerState& st, Counters& c, std::string& out) {
  const bool with_cas = req.command == Command::gets || req.command == Command::gats;
  const bool touch = req.command == Command::gat || req.command == Command::gats;
  const std::int64_t now = st.now();
  std::optional<std::int64_t> exptime;
  if (touch) exptime = absolute_exptime(req.exptime, now);
  for (const std::string_view key : req.keys) {
    ++c.cmd_get;
    if (touch) ++c.cmd_touch;
    const bool hit = st.store.get(key, now, [&](const ItemView& it) { append_value(out, it, with_cas); }, exptime);
    if (hit) {
      ++c.get_hits;
      if (touch) ++c.touch_hits;
    } else {
      ++c.get_misses;
      if (touch) ++c.touch_misses;
    }
  }
  out.append("END\r\n");
}

}  // namespace

void Stats::add(Counters& c) {
  auto put = [](std::atomic<std::uint64_t>& a, std::uint64_t& v) {
    if (v != 0) a.fetch_add(v, std::memory_order_relaxed);
    v = 0;
  };
  put(cmd_get, c.cmd_get); put(cmd_set, c.cmd_set); put(cmd_flush, c.cmd_flush); put(cmd_touch, c.cmd_touch);
  put(get_hits, c.get_hits); put(get_misses, c.get_misses);
  put(delete_hits, c.delete_hits); put(delete_misses, c.delete_misses);
  put(incr_hits, c.incr_hits); put(incr_misses, c.incr_misses);
  put(decr_hits, c.decr_hits); put(decr_misses, c.decr_misses);
  put(cas_hits, c.cas_hits); put(cas_misses, c.cas_misses); put(cas_badval, c.cas_badval);
  put(touch_hits, c.touch_hits); put(touch_misses, c.touch_misses);
  put(store_too_large, c.store_too_large); put(store_no_memory, c.store_no_memory);
  put(bytes_read, c.bytes_read); put(bytes_written, c.bytes_written);
}

void Stats::reset() {
  for (auto* a : {&cmd_get, &cmd_set, &cmd_flush, &cmd_touch, &get_hits, &get_misses, &delete_hits, &delete_misses,
                  &incr_hits, &incr_misses, &decr_hits, &decr_misses, &cas_hits, &cas_misses, &cas_badval,
                  &touch_hits, &touch_misses, &store_too_large, &store_no_memory, &bytes_read, &bytes_written}) {
    a->store(0, std::memory_order_relaxed);
  }
}

ServerState::ServerState(const ServerSettings& s, std::function<std::int64_t()> c)
    : settings(s),
      clock(c ? std::move(c) : std::function<std::int64_t()>([] { return static_cast<std::int64_t>(std::time(nullptr)); })),
      started(clock()),
      store(Store::Options{s.memory_limit, 16}) {}

std::int64_t absolute_exptime(std::int64_t exptime, std::int64_t now) {
  if (exptime < 0) return -1;
  if (exptime == 0) return 0;
  if (exptime > kMaxRelativeExptime) return exptime <= now ? -1 : exptime;
  return now + exptime;
}

After execute(const Request& req, ServerState& st, Counters& c, std::string& out) {
  const std::size_t mark = out.size();
  After after = After::keep_open;
  switch (req.command) {
    case Command::get:
    case Command::gets:
    case Command::gat:
    case Command::gats:
      execute_retrieval(req, st, c, out);
      break;
    case Command::set:
    case Command::add:
    case Command::replace:
    case Command::append:
    case Command::prepend:
    case Command::cas: {
      ++c.cmd_set;
      const std::int64_t now = st.now();
      const StoreResult r = st.store.store(store_mode(req.command), req.keys[0], req.data, req.flags,
                                           absolute_exptime(req.exptime, now), req.cas_unique, now);
      switch (r) {
        case StoreResult::stored:
          if (req.command == Command::cas) ++c.cas_hits;
          append_line(out, "STORED");
          break;
        case StoreResult::not_stored: append_line(out, "NOT_STORED"); break;
        case StoreResult::exists:
          ++c.cas_badval;
          append_line(out, "EXISTS");
          break;
        case StoreResult::not_found:
          ++c.cas_misses;
          append_line(out, "NOT_FOUND");
          break;
        case StoreResult::no_memory:
          ++c.store_no_memory;
          append_line(out, reply::kOutOfMemory);
          break;
      }
      break;
    }
    case Command::del: {
      const bool hit = st.store.remove(req.keys[0], st.now());
      ++(hit ? c.delete_hits : c.delete_misses);
      append_line(out, hit ? "DELETED" : "NOT_FOUND");
      break;
    }
    case Command::incr:
    case Command::decr: {
      const bool incr = req.command == Command::incr;
      std::uint64_t v = 0;
      switch (st.store.delta(req.keys[0], incr, req.delta, st.now(), &v)) {
        case DeltaResult::ok:
          ++(incr ? c.incr_hits : c.decr_hits);
          append_number(out, v);
          out.append("\r\n");
          break;
        case DeltaResult::not_found:
          ++(incr ? c.incr_misses : c.decr_misses);
          append_line(out, "NOT_FOUND");
          break;
        case DeltaResult::non_numeric: append_line(out, reply::kNonNumeric); break;
        case DeltaResult::no_memory: append_line(out, reply::kOutOfMemory); break;
      }
      break;
    }
    case Command::touch: {
      ++c.cmd_touch;
      const std::int64_t now = st.now();
      const bool hit = st.store.touch(req.keys[0], absolute_exptime(req.exptime, now), now);
      ++(hit ? c.touch_hits : c.touch_misses);
      append_line(out, hit ? "TOUCHED" : "NOT_FOUND");
      break;
    }
    case Command::flush_all:
      ++c.cmd_flush;
      st.store.flush(st.now(), req.delay);
      append_line(out, "OK");
      break;
    case Command::version:
      out.append("VERSION ");
      append_line(out, kVersion);
      break;
    case Command::verbosity:
      st.verbosity.store(req.verbosity, std::memory_order_relaxed);
      append_line(out, "OK");
      break;
    case Command::stats:
      if (req.stats_group.empty()) {
        st.stats.add(c);  // this connection's own counts so far are part of the answer
        append_stats(out, st);
      } else if (req.stats_group == "reset") {
        c = Counters{};
        st.stats.reset();
        append_line(out, "RESET");
      } else if (req.stats_group == "settings") {
        append_settings(out, st);
      } else if (req.stats_group == "items" || req.stats_group == "slabs" || req.stats_group == "sizes") {
        append_line(out, "END");  // no slab classes here
      } else {
        append_line(out, reply::kError);
      }
      break;
    case Command::quit:
      after = After::close;
      break;
  }
  if (req.noreply) out.resize(mark);
  return after;
}

After reject(const ParseResult& r, const Request& req, ServerState& st, Counters& c, std::string& out) {
  if (r.error == reply::kTooLarge) {
    ++c.store_too_large;
    ++c.cmd_set;
    if (req.command == Command::set && !req.keys.empty()) st.store.remove(req.keys[0], st.now());
  }
  if (!r.noreply) append_line(out, r.error);
  return r.close ? After::close : After::keep_open;
}

}  // namespace skyloft::memcached
