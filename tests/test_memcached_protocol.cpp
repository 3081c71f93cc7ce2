// The memcached server's request code without a network: the parser, the store and the replies, through a
// Session (the object both servers feed their bytes to) with an injected clock.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "protocol.hpp"
#include "session.hpp"
#include "store.hpp"

namespace mc = skyloft::memcached;

namespace {

constexpr std::int64_t kStart = 1'800'000'000;  // a unix time (the injected clock's start)

// A server state with a clock the test moves, and helpers that run request bytes through a Session.
struct Harness {
  explicit Harness(mc::ServerSettings s = {}) : state(s, [this] { return now.load(); }) {}

  // Feeds `input` in pieces of at most `chunk` bytes (0: all at once); returns every reply.
  std::string run(mc::Session& s, std::string_view input, std::size_t chunk = 0, mc::After* after = nullptr) {
    std::string out;
    mc::After a = mc::After::keep_open;
    std::size_t off = 0;
    while (off < input.size() && a == mc::After::keep_open) {
      auto space = s.read_space();
      std::size_t n = std::min(space.size(), input.size() - off);
      if (chunk > 0) n = std::min(n, chunk);
      std::memcpy(space.data(), input.data() + off, n);
      off += n;
      a = s.received(n);
      out += s.output();
      s.clear_output();
    }
    if (after) *after = a;
    return out;
  }
  std::string run(std::string_view input, std::size_t chunk = 0, mc::After* after = nullptr) {
    mc::Session s(state);
    return run(s, input, chunk, after);
  }

  std::atomic<std::int64_t> now{kStart};
  mc::ServerState state;
};

std::string stat_value(const std::string& stats, const std::string& name) {
  const std::string needle = "STAT " + name + " ";
  const auto p = stats.find(needle);
  if (p == std::string::npos) return "<missing>";
  return stats.substr(p + needle.size(), stats.find("\r\n", p) - p - needle.size());
}

}  // namespace

// ---- parser ----------------------------------------------------------------------------------------------

TEST(MemcachedParser, EveryPrefixOfAValidRequestIsIncomplete) {
  const std::string reqs[] = {"set key 5 0 3\r\nabc\r\n", "get a b c\r\n", "cas k 0 0 1 99 noreply\r\nx\r\n",
                              "incr n 5\r\n", "flush_all 10\r\n", "gat 100 a b\r\n"};
  for (const auto& r : reqs) {
    mc::Request req;
    for (std::size_t n = 0; n < r.size(); ++n) {
      EXPECT_EQ(mc::parse_request(std::string_view(r.data(), n), &req).status, mc::Parse::incomplete) << r << " at " << n;
    }
    const auto full = mc::parse_request(r, &req);
    EXPECT_EQ(full.status, mc::Parse::complete) << r;
    EXPECT_EQ(full.consumed, r.size()) << r;
  }
}

TEST(MemcachedParser, FieldsAndNoreply) {
  mc::Request req;
  auto r = mc::parse_request("cas kk 4294967295 -1 2 18446744073709551615 noreply\r\nhi\r\nget x\r\n", &req);
  ASSERT_EQ(r.status, mc::Parse::complete);
  EXPECT_EQ(req.command, mc::Command::cas);
  EXPECT_EQ(req.keys.at(0), "kk");
  EXPECT_EQ(req.flags, 4294967295u);
  EXPECT_EQ(req.exptime, -1);
  EXPECT_EQ(req.cas_unique, 18446744073709551615ull);
  EXPECT_TRUE(req.noreply);
  EXPECT_EQ(req.data, "hi");
  EXPECT_EQ(r.consumed, std::strlen("cas kk 4294967295 -1 2 18446744073709551615 noreply\r\nhi\r\n"));
  // A bare "\n" ends a line too; spaces between tokens collapse.
  r = mc::parse_request("get   a  b\n", &req);
  ASSERT_EQ(r.status, mc::Parse::complete);
  ASSERT_EQ(req.keys.size(), 2u);
  EXPECT_EQ(req.keys[1], "b");
}

TEST(MemcachedParser, TooLargeSwallowsTheDataBlockEvenBeforeItArrives) {
  mc::Request req;
  const auto r = mc::parse_request("set k 0 0 2000000\r\n", &req);
  EXPECT_EQ(r.status, mc::Parse::malformed);
  EXPECT_EQ(r.error, mc::reply::kTooLarge);
  EXPECT_EQ(r.consumed, std::strlen("set k 0 0 2000000\r\n"));
  EXPECT_EQ(r.swallow, 2000002u);
}

TEST(MemcachedParser, LineTooLongCloses) {
  mc::Request req;
  const std::string line(mc::kMaxLineLength + 1, 'a');
  const auto r = mc::parse_request(line, &req);
  EXPECT_EQ(r.status, mc::Parse::malformed);
  EXPECT_EQ(r.error, mc::reply::kLineTooLong);
  EXPECT_TRUE(r.close);
}

// ---- commands --------------------------------------------------------------------------------------------

TEST(MemcachedCommands, SetGetGetsManyKeys) {
  Harness h;
  EXPECT_EQ(h.run("set a 7 0 3\r\nabc\r\nset b 0 0 0\r\n\r\nget a b missing a\r\n"),
            "STORED\r\nSTORED\r\nVALUE a 7 3\r\nabc\r\nVALUE b 0 0\r\n\r\nVALUE a 7 3\r\nabc\r\nEND\r\n");
  const std::string g = h.run("gets a\r\n");
  ASSERT_EQ(g.rfind("VALUE a 7 3 ", 0), 0u) << g;
  const std::string cas = g.substr(12, g.find("\r\n") - 12);
  EXPECT_GT(std::stoull(cas), 0u);
  EXPECT_EQ(h.run("get nothing\r\n"), "END\r\n");
  // Data may hold anything, "\r\n" included.
  using namespace std::string_literals;
  EXPECT_EQ(h.run("set bin 0 0 4\r\n\r\n\0\x01\r\nget bin\r\n"s), "STORED\r\nVALUE bin 0 4\r\n\r\n\0\x01\r\nEND\r\n"s);
}

TEST(MemcachedCommands, AddReplaceAppendPrepend) {
  Harness h;
  EXPECT_EQ(h.run("add k 1 0 1\r\na\r\nadd k 2 0 1\r\nb\r\n"), "STORED\r\nNOT_STORED\r\n");
  EXPECT_EQ(h.run("replace k 3 0 1\r\nc\r\nreplace no 0 0 1\r\nx\r\n"), "STORED\r\nNOT_STORED\r\n");
  EXPECT_EQ(h.run("append k 9 0 2\r\nde\r\nprepend k 9 0 2\r\nxy\r\nget k\r\n"),
            "STORED\r\nSTORED\r\nVALUE k 3 5\r\nxycde\r\nEND\r\n");  // flags kept
  EXPECT_EQ(h.run("append no 0 0 1\r\nx\r\nprepend no 0 0 1\r\nx\r\n"), "NOT_STORED\r\nNOT_STORED\r\n");
}

TEST(MemcachedCommands, Cas) {
  Harness h;
  EXPECT_EQ(h.run("cas k 0 0 1 1\r\nx\r\n"), "NOT_FOUND\r\n");
  h.run("set k 0 0 1\r\na\r\n");
  const std::string g = h.run("gets k\r\n");
  const std::string id = g.substr(std::strlen("VALUE k 0 1 "), g.find("\r\n") - std::strlen("VALUE k 0 1 "));
  EXPECT_EQ(h.run("cas k 0 0 1 " + id + "0\r\nb\r\n"), "EXISTS\r\n");
  EXPECT_EQ(h.run("cas k 5 0 1 " + id + "\r\nb\r\n"), "STORED\r\n");
  EXPECT_EQ(h.run("cas k 5 0 1 " + id + "\r\nc\r\n"), "EXISTS\r\n");  // the id changed with the store
  EXPECT_EQ(h.run("get k\r\n"), "VALUE k 5 1\r\nb\r\nEND\r\n");
  const std::string stats = h.run("stats\r\n");
  EXPECT_EQ(stat_value(stats, "cas_hits"), "1");
  EXPECT_EQ(stat_value(stats, "cas_badval"), "2");
  EXPECT_EQ(stat_value(stats, "cas_misses"), "1");
}

TEST(MemcachedCommands, CasRaceLosesNoIncrement) {
  Harness h;
  h.run("set n 0 0 1\r\n0\r\n");
  constexpr int kThreads = 4, kEach = 300;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      mc::Session s(h.state);
      for (int i = 0; i < kEach;) {
        const std::string g = h.run(s, "gets n\r\n");
        // VALUE n 0 <len> <cas>\r\n<data>\r\nEND
        const auto l1 = g.find("\r\n");
        const std::string head = g.substr(0, l1);
        const auto sp = head.rfind(' ');
        const std::string id = head.substr(sp + 1);
        const std::string data = g.substr(l1 + 2, g.find("\r\n", l1 + 2) - l1 - 2);
        const std::string next = std::to_string(std::stoll(data) + 1);
        const std::string r = h.run(s, "cas n 0 0 " + std::to_string(next.size()) + " " + id + "\r\n" + next + "\r\n");
        if (r == "STORED\r\n") ++i;
        else ASSERT_EQ(r, "EXISTS\r\n");
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(h.run("get n\r\n"), "VALUE n 0 4\r\n1200\r\nEND\r\n");
}

TEST(MemcachedCommands, Delete) {
  Harness h;
  h.run("set a 0 0 1\r\nx\r\nset b 0 0 1\r\nx\r\nset c 0 0 1\r\nx\r\n");
  EXPECT_EQ(h.run("delete a\r\ndelete a\r\n"), "DELETED\r\nNOT_FOUND\r\n");
  EXPECT_EQ(h.run("delete b 0\r\ndelete c noreply\r\ndelete c 0 noreply\r\nget b c\r\n"), "DELETED\r\nEND\r\n");
  EXPECT_EQ(h.run("delete b 5\r\n"), std::string(mc::reply::kBadDeleteFormat) + "\r\n");
  EXPECT_EQ(h.run("delete\r\n"), "ERROR\r\n");
}

TEST(MemcachedCommands, IncrDecrEdges) {
  Harness h;
  EXPECT_EQ(h.run("incr n 1\r\ndecr n 1\r\n"), "NOT_FOUND\r\nNOT_FOUND\r\n");
  EXPECT_EQ(h.run("set n 3 0 2\r\n99\r\nincr n 1\r\nget n\r\n"), "STORED\r\n100\r\nVALUE n 3 3\r\n100\r\nEND\r\n");
  EXPECT_EQ(h.run("decr n 1000\r\n"), "0\r\n");  // decr stops at 0
  EXPECT_EQ(h.run("set m 0 0 20\r\n18446744073709551615\r\nincr m 2\r\n"), "STORED\r\n1\r\n");  // wraps
  EXPECT_EQ(h.run("incr m 18446744073709551615\r\n"), "0\r\n");
  EXPECT_EQ(h.run("set s 0 0 4\r\n 12 \r\nincr s 1\r\n"), "STORED\r\n13\r\n");  // spaces around it
  const std::string nonnum = std::string(mc::reply::kNonNumeric) + "\r\n";
  EXPECT_EQ(h.run("set t 0 0 1\r\nx\r\nincr t 1\r\n"), "STORED\r\n" + nonnum);
  EXPECT_EQ(h.run("set t 0 0 0\r\n\r\ndecr t 1\r\n"), "STORED\r\n" + nonnum);
  EXPECT_EQ(h.run("set t 0 0 20\r\n18446744073709551616\r\nincr t 1\r\n"), "STORED\r\n" + nonnum);  // 2^64
  EXPECT_EQ(h.run("set t 0 0 2\r\n-1\r\nincr t 1\r\n"), "STORED\r\n" + nonnum);
  const std::string bad = std::string(mc::reply::kBadDelta) + "\r\n";
  EXPECT_EQ(h.run("incr n -1\r\n"), bad);
  EXPECT_EQ(h.run("incr n abc\r\n"), bad);
  EXPECT_EQ(h.run("incr n 18446744073709551616\r\n"), bad);
  EXPECT_EQ(h.run("incr n\r\n"), "ERROR\r\n");
  EXPECT_EQ(h.run("incr n 5 noreply\r\nget n\r\n"), "VALUE n 3 1\r\n5\r\nEND\r\n");
  // incr gives the item a new cas id.
  const std::string before = h.run("gets n\r\n");
  h.run("incr n 1\r\n");
  EXPECT_NE(h.run("gets n\r\n").substr(0, before.find("\r\n")), before.substr(0, before.find("\r\n")));
}

TEST(MemcachedCommands, ExpiryWithTheInjectedClock) {
  Harness h;
  h.run("set rel 0 10 1\r\nx\r\nset abs 0 " + std::to_string(kStart + 100) + " 1\r\ny\r\n");
  h.run("set neg 0 -1 1\r\nz\r\nset past 0 " + std::to_string(kStart - 5) + " 1\r\nw\r\nset never 0 0 1\r\nv\r\n");
  EXPECT_EQ(h.run("get neg past\r\n"), "END\r\n");
  EXPECT_EQ(h.run("get rel abs never\r\n"), "VALUE rel 0 1\r\nx\r\nVALUE abs 0 1\r\ny\r\nVALUE never 0 1\r\nv\r\nEND\r\n");
  h.now = kStart + 9;
  EXPECT_EQ(h.run("get rel\r\n"), "VALUE rel 0 1\r\nx\r\nEND\r\n");
  h.now = kStart + 10;
  EXPECT_EQ(h.run("get rel\r\n"), "END\r\n");
  h.now = kStart + 99;
  EXPECT_EQ(h.run("touch abs 1000\r\n"), "TOUCHED\r\n");  // now relative: kStart + 1099
  h.now = kStart + 1000;
  EXPECT_EQ(h.run("get abs\r\n"), "VALUE abs 0 1\r\ny\r\nEND\r\n");
  h.now = kStart + 1099;
  EXPECT_EQ(h.run("get abs\r\ntouch abs 10\r\n"), "END\r\nNOT_FOUND\r\n");
  // 30 days is still relative; one second more is a unix time (long past: expired at once).
  h.run("set d30 0 2592000 1\r\nx\r\nset d30p 0 2592001 1\r\nx\r\n");
  EXPECT_EQ(h.run("get d30 d30p\r\n"), "VALUE d30 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(h.run("get never\r\n"), "VALUE never 0 1\r\nv\r\nEND\r\n");
  // gat/gats touch and fetch.
  EXPECT_EQ(h.run("gat 5 never missing\r\n"), "VALUE never 0 1\r\nv\r\nEND\r\n");
  EXPECT_EQ(h.run("gats 5 never\r\n").rfind("VALUE never 0 1 ", 0), 0u);
  h.now = h.now + 5;
  EXPECT_EQ(h.run("get never\r\n"), "END\r\n");
  EXPECT_EQ(h.run("gat x a\r\n"), std::string(mc::reply::kBadExptime) + "\r\n");
  EXPECT_EQ(h.run("touch a x\r\n"), std::string(mc::reply::kBadExptime) + "\r\n");
}

TEST(MemcachedCommands, FlushAllNowAndLater) {
  Harness h;
  h.run("set a 0 0 1\r\nx\r\nset b 0 0 1\r\nx\r\n");
  EXPECT_EQ(h.run("flush_all\r\nget a b\r\n"), "OK\r\nEND\r\n");
  EXPECT_EQ(h.run("set a 0 0 1\r\nx\r\nget a\r\n"), "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");  // the same second
  EXPECT_EQ(h.run("flush_all 10\r\nget a\r\n"), "OK\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
  h.now = kStart + 10;
  EXPECT_EQ(h.run("get a\r\n"), "END\r\n");
  h.now = kStart + 11;
  EXPECT_EQ(h.run("set c 0 0 1\r\nx\r\nget c\r\n"), "STORED\r\nVALUE c 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(h.run("flush_all noreply\r\nflush_all 0 noreply\r\nget c\r\n"), "END\r\n");
  EXPECT_EQ(h.run("flush_all x\r\n"), std::string(mc::reply::kBadExptime) + "\r\n");
  EXPECT_EQ(h.run("flush_all 1 2 3\r\n"), "ERROR\r\n");
}

TEST(MemcachedCommands, VersionVerbosityStatsQuit) {
  Harness h;
  EXPECT_EQ(h.run("version\r\n"), "VERSION " + std::string(mc::kVersion) + "\r\n");
  EXPECT_EQ(h.run("verbosity 1\r\nverbosity 2 noreply\r\n"), "OK\r\n");
  EXPECT_EQ(h.run("verbosity\r\n"), "ERROR\r\n");
  EXPECT_EQ(h.run("verbosity x\r\n"), std::string(mc::reply::kBadFormat) + "\r\n");
  h.run("set a 0 0 3\r\nabc\r\nset b 0 0 1\r\nx\r\nget a b c\r\n");
  h.now = kStart + 42;
  const std::string s = h.run("stats\r\n");
  EXPECT_EQ(s.substr(s.size() - 5), "END\r\n");
  EXPECT_EQ(stat_value(s, "pid"), std::to_string(::getpid()));
  EXPECT_EQ(stat_value(s, "uptime"), "42");
  EXPECT_EQ(stat_value(s, "time"), std::to_string(kStart + 42));
  EXPECT_EQ(stat_value(s, "curr_items"), "2");
  EXPECT_EQ(stat_value(s, "total_items"), "2");
  EXPECT_EQ(stat_value(s, "cmd_get"), "3");
  EXPECT_EQ(stat_value(s, "cmd_set"), "2");
  EXPECT_EQ(stat_value(s, "get_hits"), "2");
  EXPECT_EQ(stat_value(s, "get_misses"), "1");
  EXPECT_EQ(stat_value(s, "curr_connections"), "1");  // the Session running "stats"
  EXPECT_EQ(stat_value(s, "limit_maxbytes"), std::to_string(64u << 20));
  EXPECT_NE(stat_value(s, "bytes"), "0");
  EXPECT_EQ(h.run("stats reset\r\n"), "RESET\r\n");
  EXPECT_EQ(stat_value(h.run("stats\r\n"), "cmd_get"), "0");
  EXPECT_EQ(stat_value(h.run("stats settings\r\n"), "item_size_max"), "1048576");
  EXPECT_EQ(h.run("stats items\r\n"), "END\r\n");
  EXPECT_EQ(h.run("stats bogus\r\n"), "ERROR\r\n");
  mc::After after;
  EXPECT_EQ(h.run("quit\r\nget a\r\n", 0, &after), "");
  EXPECT_EQ(after, mc::After::close);
}

TEST(MemcachedCommands, EveryErrorReply) {
  Harness h;
  const std::string error = "ERROR\r\n", bad = std::string(mc::reply::kBadFormat) + "\r\n";
  EXPECT_EQ(h.run("bogus\r\n"), error);
  EXPECT_EQ(h.run("\r\n"), error);
  EXPECT_EQ(h.run("GET a\r\n"), error);  // commands are case-sensitive
  EXPECT_EQ(h.run("get\r\n"), error);
  EXPECT_EQ(h.run("set a 0 0\r\n"), error);
  EXPECT_EQ(h.run("cas a 0 0 1\r\n"), error);
  EXPECT_EQ(h.run("touch a\r\n"), error);
  const std::string k250(250, 'k'), k251(251, 'k');
  EXPECT_EQ(h.run("set " + k250 + " 0 0 1\r\nx\r\nget " + k250 + "\r\n"),
            "STORED\r\nVALUE " + k250 + " 0 1\r\nx\r\nEND\r\n");
  // A bad storage line is not followed by a data block the server knows of: the data line is a command.
  EXPECT_EQ(h.run("set " + k251 + " 0 0 1\r\nx\r\n"), bad + error);
  EXPECT_EQ(h.run("get " + k251 + "\r\n"), bad);
  EXPECT_EQ(h.run("get a\x01z\r\n"), bad);  // control characters
  EXPECT_EQ(h.run("set a x 0 1\r\nx\r\n"), bad + error);
  EXPECT_EQ(h.run("set a 4294967296 0 1\r\nx\r\n"), bad + error);
  EXPECT_EQ(h.run("set a 0 0 -1\r\nx\r\n"), bad + error);
  EXPECT_EQ(h.run("set a 0 0 4294967295\r\n"), bad);
  EXPECT_EQ(h.run("cas a 0 0 1 x\r\nx\r\n"), bad + error);
  // A data block that is not followed by "\r\n": the block's length is skipped, the rest is a command line.
  EXPECT_EQ(h.run("set a 0 0 2\r\nxyz\r\nget a\r\n"), std::string(mc::reply::kBadChunk) + "\r\nERROR\r\nEND\r\n");
  EXPECT_EQ(h.run("set a 0 0 2 noreply\r\nxyz\r\nget a\r\n"), "ERROR\r\nEND\r\n");
}

TEST(MemcachedCommands, TooLargeIsSkippedAndDropsTheOldValue) {
  Harness h;
  h.run("set big 0 0 1\r\nx\r\n");
  const std::string huge(2'000'000, 'h');
  // Fed in small pieces: the refused block is swallowed as it arrives.
  EXPECT_EQ(h.run("set big 0 0 2000000\r\n" + huge + "\r\nget big\r\nversion\r\n", 1000),
            std::string(mc::reply::kTooLarge) + "\r\nEND\r\nVERSION " + std::string(mc::kVersion) + "\r\n");
  EXPECT_EQ(stat_value(h.run("stats\r\n"), "store_too_large"), "1");
  // 1 MiB exactly is too large (the item's bookkeeping counts), as in memcached; a little less is stored.
  const std::string mib(1 << 20, 'm'), almost((1 << 20) - 1024, 'a');
  EXPECT_EQ(h.run("set m 0 0 1048576\r\n" + mib + "\r\n"), std::string(mc::reply::kTooLarge) + "\r\n");
  EXPECT_EQ(h.run("set m 0 0 " + std::to_string(almost.size()) + "\r\n" + almost + "\r\nget m\r\n", 7000),
            "STORED\r\nVALUE m 0 " + std::to_string(almost.size()) + "\r\n" + almost + "\r\nEND\r\n");
}

TEST(MemcachedCommands, NoreplyEverywhereItIsAllowed) {
  Harness h;
  const std::string script =
      "set a 0 0 1 noreply\r\n1\r\nadd b 0 0 1 noreply\r\n2\r\nadd a 0 0 1 noreply\r\nx\r\n"
      "replace a 0 0 1 noreply\r\n3\r\nappend a 0 0 1 noreply\r\n4\r\nprepend a 0 0 1 noreply\r\n5\r\n"
      "cas a 0 0 1 1 noreply\r\nx\r\nincr a 1 noreply\r\ndecr a 2 noreply\r\ntouch a 100 noreply\r\n"
      "delete b noreply\r\nverbosity 1 noreply\r\nget a b\r\n";
  EXPECT_EQ(h.run(script), "VALUE a 0 3\r\n533\r\nEND\r\n");
  EXPECT_EQ(h.run("flush_all noreply\r\nget a\r\n"), "END\r\n");
}

TEST(MemcachedCommands, PipelinedAndSplitAtEveryByte) {
  const std::string script =
      "set a 1 0 5\r\nhello\r\nget a\r\ngets zz a\r\nincr nope 1\r\nset n 0 0 1\r\n7\r\nincr n 3\r\n"
      "bogus line\r\nappend a 0 0 1\r\n!\r\ndelete zz\r\nset bad 0 0 1\r\nxx\r\ntouch a 0\r\nget a n\r\n"
      "set big 0 0 999999999\r\nversion\r\n";
  // The expected replies: the whole script at once into a fresh state, with gets' cas ids normalized.
  auto normalize = [](std::string s) {
    const auto p = s.find("VALUE a 1 5 ");
    if (p != std::string::npos) s.replace(p, s.find("\r\n", p) - p, "VALUE a 1 5 <cas>");
    return s;
  };
  std::string expected;
  {
    Harness h;
    expected = normalize(h.run(script));
  }
  EXPECT_NE(expected.find("VALUE a 1 6\r\nhello!\r\nVALUE n 0 2\r\n10\r\nEND\r\n"), std::string::npos) << expected;
  EXPECT_NE(expected.find(std::string(mc::reply::kTooLarge)), std::string::npos);
  for (std::size_t split = 1; split < script.size(); ++split) {
    Harness h;
    mc::Session s(h.state);
    std::string got = h.run(s, std::string_view(script).substr(0, split));
    got += h.run(s, std::string_view(script).substr(split));
    ASSERT_EQ(normalize(got), expected) << "split at byte " << split;
  }
  Harness h;
  EXPECT_EQ(normalize(h.run(script, 1)), expected);  // one byte at a time
}

TEST(MemcachedCommands, LruEvictsUnderTheMemoryLimit) {
  mc::ServerSettings s;
  s.memory_limit = 1 << 20;  // 1 MiB over 16 shards
  Harness h(s);
  const std::string v(10'000, 'v');
  for (int i = 0; i < 400; ++i) {  // ~4 MB
    ASSERT_EQ(h.run("set k" + std::to_string(i) + " 0 0 10000\r\n" + v + "\r\n"), "STORED\r\n");
    if (i >= 1) h.run("get k0\r\n");  // k0 stays recently used
  }
  const std::string stats = h.run("stats\r\n");
  EXPECT_GT(std::stoull(stat_value(stats, "evictions")), 200u);
  EXPECT_LE(std::stoull(stat_value(stats, "bytes")), 1u << 20);
  EXPECT_EQ(h.run("get k0\r\n").rfind("VALUE k0 ", 0), 0u);
  EXPECT_EQ(h.run("get k1\r\n"), "END\r\n");
  EXPECT_EQ(h.run("get k399\r\n").rfind("VALUE k399 ", 0), 0u);
}

TEST(MemcachedStore, ConcurrentWritersAndReaders) {
  mc::Store store;
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string key = "k" + std::to_string(i % 50);
        if (t % 2 == 0) {
          store.store(mc::StoreMode::set, key, key, 0, 0, 0, kStart);
        } else {
          store.get(key, kStart, [&](const mc::ItemView& it) { bad += it.data != key; });
          std::uint64_t v;
          store.delta("counter", true, 1, kStart, &v);
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(store.counters().curr_items, 50u);
}
