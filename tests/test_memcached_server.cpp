// The memcached server over loopback TCP: many concurrent connections on the skyloft server, the Linux
// pool baseline, hostile peers (a reset mid-request, garbage, an endless line), and the stock clients of
// Debian's libmemcached-tools against it.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "server.hpp"

namespace mc = skyloft::memcached;

namespace {

// A server on a free port, run by a thread until the fixture ends.
class RunningServer {
 public:
  explicit RunningServer(mc::Mode mode) : state_(mc::ServerSettings{}) {
    opts_.mode = mode;
    opts_.port = 0;
    opts_.config.policy = "fifo";
    thread_ = std::thread([this] {
      auto ready = [this](std::uint16_t p) { port_.store(p); };
      status_ = opts_.mode == mc::Mode::skyloft ? mc::serve_skyloft(opts_, state_, stop_, ready)
                                                : mc::serve_linux(opts_, state_, stop_, ready);
      done_.store(true);
    });
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (port_.load() == 0 && !done_.load() && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~RunningServer() {
    stop_.store(true);
    thread_.join();
  }
  std::uint16_t port() const { return port_.load(); }
  int status() const { return status_; }

 private:
  mc::ServerOptions opts_;
  mc::ServerState state_;
  std::atomic<bool> stop_{false}, done_{false};
  std::atomic<std::uint16_t> port_{0};
  int status_ = 0;
  std::thread thread_;
};

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{20, 0};  // generous: a sanitizer build on a loaded machine
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t w = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (w <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(w));
  }
  return true;
}

// Reads until the bytes received end with `suffix` (or the peer closes / the timeout passes).
std::string read_until(int fd, std::string_view suffix) {
  std::string got;
  char buf[65536];
  while (got.size() < suffix.size() || got.compare(got.size() - suffix.size(), suffix.size(), suffix) != 0) {
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    got.append(buf, static_cast<std::size_t>(r));
  }
  return got;
}

std::string ask(int fd, std::string_view req, std::string_view suffix) {
  if (!send_all(fd, req)) return "<send failed>";
  return read_until(fd, suffix);
}

// Every connection open at once: each stores its key, then fetches it (two requests pipelined).
void many_connections(std::uint16_t port, int n) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    const int fd = connect_to(port);
    ASSERT_GE(fd, 0) << "connection " << i;
    fds.push_back(fd);
  }
  for (int i = 0; i < n; ++i) {
    const std::string v = "value-" + std::to_string(i);
    ASSERT_TRUE(send_all(fds[i], "set key" + std::to_string(i) + " " + std::to_string(i) + " 0 " +
                                     std::to_string(v.size()) + "\r\n" + v + "\r\n"));
  }
  for (int i = 0; i < n; ++i) ASSERT_EQ(read_until(fds[i], "\r\n"), "STORED\r\n") << "connection " << i;
  for (int i = 0; i < n; ++i) {
    const std::string k = "key" + std::to_string((i + 1) % n);
    ASSERT_TRUE(send_all(fds[i], "get " + k + "\r\nincr counter 1\r\n"));
  }
  for (int i = 0; i < n; ++i) {
    const int j = (i + 1) % n;
    const std::string v = "value-" + std::to_string(j);
    const std::string got = read_until(fds[i], "END\r\nNOT_FOUND\r\n");
    ASSERT_EQ(got, "VALUE key" + std::to_string(j) + " " + std::to_string(j) + " " + std::to_string(v.size()) +
                       "\r\n" + v + "\r\nEND\r\nNOT_FOUND\r\n")
        << "connection " << i;
  }
  const std::string stats = ask(fds[0], "stats\r\n", "END\r\n");
  const auto p = stats.find("STAT curr_connections ");
  ASSERT_NE(p, std::string::npos);
  EXPECT_GE(std::stoi(stats.substr(p + 22)), n);
  for (const int fd : fds) ::close(fd);
}

// Threads with pipelined batches on their own connections, all at once.
void pipelined_clients(std::uint16_t port, int threads, int batches) {
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      const int fd = connect_to(port);
      if (fd < 0) {
        ++failures;
        return;
      }
      for (int b = 0; b < batches; ++b) {
        std::string req, want;
        for (int i = 0; i < 10; ++i) {
          const std::string k = "t" + std::to_string(t) + "_" + std::to_string(i);
          const std::string v = std::to_string(b * 10 + i);
          req += "set " + k + " 0 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\nget " + k + "\r\n";
          want += "STORED\r\nVALUE " + k + " 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\nEND\r\n";
        }
        if (ask(fd, req, want.substr(want.size() - 12)) != want) ++failures;
      }
      ::close(fd);
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
}

std::string find_in_path(const char* name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "";
  std::size_t i = 0;
  while (i <= p.size()) {
    const std::size_t j = std::min(p.find(':', i), p.size());
    const std::string cand = p.substr(i, j - i) + "/" + name;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
    i = j + 1;
  }
  return "";
}

// Runs a shell command line; returns its exit status and stdout.
int run(const std::string& cmd, std::string* out = nullptr) {
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return -1;
  char buf[4096];
  std::string got;
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) got.append(buf, n);
  const int st = ::pclose(f);
  if (out) *out = got;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

TEST(MemcachedServer, SkyloftServesTwoHundredFiftySixConnectionsAtOnce) {
  RunningServer server(mc::Mode::skyloft);
  ASSERT_NE(server.port(), 0) << "the server did not start";
  many_connections(server.port(), 256);
  pipelined_clients(server.port(), 8, 40);
}

TEST(MemcachedServer, LinuxPoolServesManyConnections) {
  RunningServer server(mc::Mode::linux);
  ASSERT_NE(server.port(), 0) << "the server did not start";
  many_connections(server.port(), 64);
  pipelined_clients(server.port(), 4, 40);
}

TEST(MemcachedServer, HostilePeersDoNotDisturbOthers) {
  RunningServer server(mc::Mode::skyloft);
  ASSERT_NE(server.port(), 0);
  const int good = connect_to(server.port());
  ASSERT_GE(good, 0);
  ASSERT_EQ(ask(good, "set k 0 0 2\r\nok\r\n", "\r\n"), "STORED\r\n");
  for (int round = 0; round < 5; ++round) {
    // A reset in the middle of a data block.
    const int reset = connect_to(server.port());
    ASSERT_GE(reset, 0);
    ASSERT_TRUE(send_all(reset, "set k 0 0 100\r\nabc"));
    linger lg{1, 0};
    ::setsockopt(reset, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(reset);
    // Garbage, then a line that never ends: the server answers ERROR, then closes at the length limit.
    const int junk = connect_to(server.port());
    ASSERT_GE(junk, 0);
    std::string garbage("\x00\xff\x01 get\r\n", 9);
    EXPECT_EQ(ask(junk, garbage, "\r\n"), "ERROR\r\n");
    send_all(junk, std::string(200'000, 'x'));
    EXPECT_EQ(read_until(junk, "<closed>"), std::string(mc::reply::kLineTooLong) + "\r\n");
    ::close(junk);
    // A client that leaves with a big reply unread.
    const int leaver = connect_to(server.port());
    ASSERT_GE(leaver, 0);
    const std::string big(500'000, 'b');
    send_all(leaver, "set big 0 0 500000\r\n" + big + "\r\nget big\r\nget big\r\nget big\r\n");
    ::close(leaver);
  }
  EXPECT_EQ(ask(good, "get k\r\n", "END\r\n"), "VALUE k 0 2\r\nok\r\nEND\r\n");
  ::close(good);
}

TEST(MemcachedServer, DebianClientsWork) {
  const char* tools[] = {"memccp", "memccat", "memcrm", "memcexist", "memctouch", "memcstat", "memcflush"};
  for (const char* t : tools) {
    if (find_in_path(t).empty()) {
      GTEST_SKIP() << t << " is not installed (Debian: apt-get install libmemcached-tools); skipping the stock-client check";
    }
  }
  RunningServer server(mc::Mode::skyloft);
  ASSERT_NE(server.port(), 0);
  const std::string servers = "--servers=127.0.0.1:" + std::to_string(server.port());
  char dir[] = "/tmp/skyloft_mc_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/greeting";
  std::ofstream(file) << "hello from a stock client\n";
  std::string out;
  EXPECT_EQ(run("memccp " + servers + " " + file, &out), 0) << out;
  EXPECT_EQ(run("memccat " + servers + " greeting", &out), 0) << out;
  EXPECT_EQ(out.find("hello from a stock client"), 0u) << out;
  EXPECT_EQ(run("memcexist " + servers + " greeting", &out), 0) << out;
  EXPECT_EQ(run("memctouch " + servers + " --expire=100 greeting", &out), 0) << out;
  EXPECT_EQ(run("memcrm " + servers + " greeting", &out), 0) << out;
  EXPECT_NE(run("memcexist " + servers + " greeting", &out), 0) << out;
  EXPECT_EQ(run("memcstat " + servers, &out), 0) << out;
  EXPECT_NE(out.find("curr_connections"), std::string::npos) << out;
  EXPECT_NE(out.find("version: " + std::string(mc::kVersion)), std::string::npos) << out;
  EXPECT_EQ(run("memccp " + servers + " " + file, &out), 0) << out;
  EXPECT_EQ(run("memcflush " + servers, &out), 0) << out;
  EXPECT_NE(run("memcexist " + servers + " greeting", &out), 0) << out;
  if (!find_in_path("memcaslap").empty()) {
    EXPECT_EQ(run("memcaslap -s 127.0.0.1:" + std::to_string(server.port()) + " -t 1s -T 1 -c 8", &out), 0) << out;
    EXPECT_NE(out.find("TPS"), std::string::npos) << out;
  }
  std::remove(file.c_str());
  ::rmdir(dir);
}

TEST(MemcachedServerOptions, BadOptionsGetPreciseErrors) {
  auto parse = [](std::vector<std::string> args) {
    args.insert(args.begin(), "skyloft-memcached");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    mc::parse_server_options(static_cast<int>(argv.size()), argv.data());
  };
  EXPECT_EXIT(parse({"--mode", "x"}), testing::ExitedWithCode(2), "--mode: 'x' is not skyloft or linux");
  EXPECT_EXIT(parse({"-m", "0"}), testing::ExitedWithCode(2), "-m needs an integer in \\[1, 1048576\\], got '0'");
  EXPECT_EXIT(parse({"--port", "70000"}), testing::ExitedWithCode(2), "--port needs an integer in \\[0, 65535\\]");
  EXPECT_EXIT(parse({"-I", "12q"}), testing::ExitedWithCode(2), "-I: '12q' is not a size in bytes");
  EXPECT_EXIT(parse({"-I", "5"}), testing::ExitedWithCode(2), "-I: 5 is out of range");
  EXPECT_EXIT(parse({"--listen", "foo"}), testing::ExitedWithCode(2), "--listen: 'foo' is not an IPv4 address");
  EXPECT_EXIT(parse({"--threads", "2"}), testing::ExitedWithCode(2), "--threads applies to --mode linux");
  EXPECT_EXIT(parse({"--mode", "linux", "--preempt", "flag"}), testing::ExitedWithCode(2), "apply to --mode skyloft");
  EXPECT_EXIT(parse({"--bogus"}), testing::ExitedWithCode(2), "unknown argument '--bogus'");
  const char* ok[] = {"skyloft-memcached", "--mode", "linux", "--threads", "3", "-m", "8", "-I", "2m", "--port", "0"};
  const mc::ServerOptions o = mc::parse_server_options(11, const_cast<char**>(ok));
  EXPECT_EQ(o.mode, mc::Mode::linux);
  EXPECT_EQ(o.threads, 3);
  EXPECT_EQ(o.memory_mb, 8u);
  EXPECT_EQ(o.max_item_size, 2u << 20);
  EXPECT_EQ(o.port, 0);
}
