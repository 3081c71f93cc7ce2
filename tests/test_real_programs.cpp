// test_real_programs.cpp - unmodified programs from Debian under skyloft-run give the results of their native
// run: pigz and xz -T0 (compressed bytes equal, decompression round trip), sysbench threads and mutex (the
// deterministic event counts), memcached serving libmemcached's command-line clients over loopback.
//
// A program that is not installed skips its test with the package to install (scripts/install-deps.sh
// installs them all). Each test takes a few seconds.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "child_process.hpp"
#include "run_program.hpp"

namespace {

using posixtest::Outcome;
using posixtest::run;

// The absolute path of `name` found through PATH, or "".
std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

#define REQUIRE_PROGRAM(var, name, package)                                                              \
  const std::string var = find_program(name);                                                            \
  if (var.empty()) GTEST_SKIP() << name << " is not installed (Debian package " << package                \
                                << "; scripts/install-deps.sh installs it)"

Outcome skyloft_run(const std::vector<std::string>& options, const std::vector<std::string>& argv) {
  std::vector<std::string> all{SKYLOFT_RUN_PATH};
  all.insert(all.end(), options.begin(), options.end());
  all.push_back("--");
  all.insert(all.end(), argv.begin(), argv.end());
  return run(all);
}

// A scratch directory removed with its files at the end of the test.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    char t[] = "/tmp/skyloft-real-XXXXXX";
    if (mkdtemp(t) == nullptr) std::abort();
    path = t;
  }
  ~ScratchDir() { run({"/bin/rm", "-rf", path}); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// `bytes` of text that compresses like prose (words from a small vocabulary, an LCG picks them): the same
// bytes on every run.
std::string generated_text(std::size_t bytes) {
  std::vector<std::string> words;
  std::uint64_t x = 12345;
  auto next = [&] { return (x = x * 6364136223846793005ULL + 1442695040888963407ULL) >> 33; };
  for (int i = 0; i < 4000; ++i) {
    std::string w;
    for (std::uint64_t n = 2 + next() % 8; n > 0; --n) w.push_back(static_cast<char>('a' + next() % 12));
    words.push_back(w);
  }
  std::string out;
  out.reserve(bytes + 16);
  while (out.size() < bytes) {
    out += words[next() % words.size()];
    out.push_back(next() % 9 == 0 ? '\n' : ' ');
  }
  out.resize(bytes);
  return out;
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

// The skyloft-run configurations the compressors run under: default (fifo, no preemption) and timer
// preemption on one core (threads then share the core by preemption alone).
const std::vector<std::vector<std::string>> kConfigs = {{}, {"--cores", "0", "--preempt", "timer", "--quantum-us", "100"}};

std::string describe(const std::vector<std::string>& options) {
  std::string s = "skyloft-run";
  for (const auto& o : options) s += " " + o;
  return s;
}

// Compresses `input` natively and under each configuration: identical bytes; then decompresses the
// native output under skyloft-run: the input again.
void expect_same_compression(const std::vector<std::string>& compress, const std::vector<std::string>& decompress,
                             const std::string& input_path, const std::string& input, const std::string& scratch) {
  Outcome native = run(compress);
  ASSERT_TRUE(native.exited(0)) << "native run failed: " << native.err;
  ASSERT_FALSE(native.out.empty());
  for (const auto& options : kConfigs) {
    Outcome sky = skyloft_run(options, compress);
    EXPECT_TRUE(sky.exited(0)) << describe(options) << ": status " << sky.status << ", stderr:\n" << sky.err;
    EXPECT_TRUE(sky.out == native.out) << describe(options) << ": compressed output differs from the native run ("
                                       << sky.out.size() << " bytes vs " << native.out.size() << ")";
  }
  write_file(scratch, native.out);
  std::vector<std::string> d = decompress;
  d.push_back(scratch);
  Outcome back = skyloft_run({}, d);
  EXPECT_TRUE(back.exited(0)) << back.err;
  EXPECT_TRUE(back.out == input) << "round trip of " << input_path << " gave " << back.out.size() << " bytes, not "
                                 << input.size();
}

TEST(RealPrograms, PigzCompressesAsNatively) {
  REQUIRE_PROGRAM(pigz, "pigz", "pigz");
  ScratchDir dir;
  const std::string input = generated_text(8 << 20);
  const std::string in = dir.file("input.txt");
  write_file(in, input);
  expect_same_compression({pigz, "-p", "4", "-c", in}, {pigz, "-p", "4", "-d", "-c"}, in, input, dir.file("in.gz"));
}

TEST(RealPrograms, XzMultithreadedCompressesAsNatively) {
  // 512 KiB blocks so that -T0 really compresses blocks in parallel on a 4 MiB file (xz's default block is
  // three dictionaries, larger than the file).
  REQUIRE_PROGRAM(xz, "xz", "xz-utils");
  ScratchDir dir;
  const std::string input = generated_text(4 << 20);
  const std::string in = dir.file("input.txt");
  write_file(in, input);
  expect_same_compression({xz, "-T0", "-2", "--block-size=512KiB", "-c", in}, {xz, "-T0", "-d", "-c"}, in, input,
                          dir.file("in.xz"));
}

// The line of `text` that starts with `prefix`, or "".
std::string line_starting(const std::string& text, const std::string& prefix) {
  auto at = text.find(prefix);
  return at == std::string::npos ? "" : text.substr(at, text.find('\n', at) - at);
}

TEST(RealPrograms, ThreadPoolsAreSizedAsNatively) {
  // nproc and xz -T0 size themselves from sched_getaffinity: a task must be told the runtime's cores, not
  // the one core its worker is pinned to (both said 1 on 2 cores before the layer answered it).
  REQUIRE_PROGRAM(nproc, "nproc", "coreutils");
  Outcome native = run({nproc});
  Outcome sky = skyloft_run({}, {nproc});
  EXPECT_TRUE(sky.exited(0)) << sky.err;
  EXPECT_EQ(sky.out, native.out);
  REQUIRE_PROGRAM(xz, "xz", "xz-utils");
  const std::vector<std::string> cmd = {xz, "-T0", "-vv", "-c", "/dev/null"};
  const std::string threads = line_starting(run(cmd).err, "xz: Using up to");
  ASSERT_FALSE(threads.empty());
  EXPECT_EQ(line_starting(skyloft_run({}, cmd).err, "xz: Using up to"), threads);
}

// The value of a sysbench report line "<label> <value>", or "" when the line is missing.
std::string report_value(const std::string& out, const std::string& label) {
  auto at = out.find(label);
  if (at == std::string::npos) return "";
  auto start = out.find_first_not_of(' ', at + label.size());
  return out.substr(start, out.find('\n', start) - start);
}

TEST(RealPrograms, SysbenchThreadsCountsTheSameEvents) {
  REQUIRE_PROGRAM(sysbench, "sysbench", "sysbench");
  const std::vector<std::string> cmd = {sysbench, "threads", "--threads=8", "--thread-locks=4", "--thread-yields=100",
                                        "--events=1000",
                                        "--time=0", "run"};
  Outcome native = run(cmd);
  ASSERT_TRUE(native.exited(0)) << native.err;
  ASSERT_EQ(report_value(native.out, "total number of events:"), "1000") << native.out;
  for (const auto& options : kConfigs) {
    Outcome sky = skyloft_run(options, cmd);
    EXPECT_TRUE(sky.exited(0)) << describe(options) << ": " << sky.err;
    EXPECT_EQ(report_value(sky.out, "total number of events:"), "1000") << describe(options) << ":\n" << sky.out;
  }
}

// Disabled until thread-locals are per task: sysbench's mutex test gives each thread one event, counted in
// a `__thread` variable (sb_mutex.c: "if (tls_counter++ > 0) no more events"). Under skyloft-run threads
// share their worker's thread-locals, so with 2 workers only 2 of the 4 threads ever run an event
// (measured: "total number of events: 2", natively 4).
TEST(RealPrograms, SysbenchMutexRunsOneEventPerThread) {
  REQUIRE_PROGRAM(sysbench, "sysbench", "sysbench");
  const std::vector<std::string> cmd = {sysbench, "mutex", "--threads=4", "--mutex-locks=20000", "run"};
  Outcome native = run(cmd);
  ASSERT_TRUE(native.exited(0)) << native.err;
  ASSERT_EQ(report_value(native.out, "total number of events:"), "4") << native.out;
  Outcome sky = skyloft_run({}, cmd);
  EXPECT_TRUE(sky.exited(0)) << sky.err;
  EXPECT_EQ(report_value(sky.out, "total number of events:"), "4") << sky.out;
}

// ---- memcached ----

// A loopback port nobody listens on now (the kernel's pick for an ephemeral bind).
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::abort();
  }
  close(fd);
  return ntohs(a.sin_port);
}

bool accepts_connections(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// A memcached server in a child process (stdout and stderr to /dev/null), stopped with SIGTERM.
class Server {
 public:
  explicit Server(std::vector<std::string> argv) {
    pid_ = fork_test_child();
    if (pid_ == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(121);
    }
  }
  bool wait_listening(int port) {
    for (int i = 0; i < 500; ++i) {
      if (accepts_connections(port)) return true;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // SIGTERM, then the status (-1 if it had already gone).
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = -1;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

 private:
  pid_t pid_ = -1;
};

struct ClientResults {
  std::string stored;  // memccat of the files memccp stored
  bool slap_ok = false;
  std::string slap_output;
  int server_status = -1;
};

// Starts memcached (native, or with skyloft-run's options), stores three files with memccp, reads them
// back with memccat, loads it with memcslap from 4 client threads, stops it.
ClientResults drive_memcached(const std::string& memcached, const std::vector<std::string>* skyloft_options,
                              const ScratchDir& dir) {
  const int port = free_port();
  std::vector<std::string> argv = {memcached, "-p", std::to_string(port), "-l", "127.0.0.1", "-U", "0", "-t", "2"};
  if (getuid() == 0) argv.insert(argv.begin() + 1, {"-u", "root"});
  if (skyloft_options != nullptr) {
    std::vector<std::string> all{SKYLOFT_RUN_PATH};
    all.insert(all.end(), skyloft_options->begin(), skyloft_options->end());
    all.push_back("--");
    all.insert(all.end(), argv.begin(), argv.end());
    argv = all;
  }
  ClientResults r;
  Server server(argv);
  if (!server.wait_listening(port)) {
    ADD_FAILURE() << "memcached did not listen on port " << port;
    return r;
  }
  const std::string servers = "--servers=127.0.0.1:" + std::to_string(port);
  std::vector<std::string> files;
  for (int i = 0; i < 3; ++i) {
    files.push_back(dir.file("value" + std::to_string(i)));
    write_file(files.back(), generated_text(static_cast<std::size_t>(1000 + 20000 * i)));
  }
  std::vector<std::string> cp = {find_program("memccp"), servers};
  cp.insert(cp.end(), files.begin(), files.end());
  Outcome c = run(cp);
  EXPECT_TRUE(c.exited(0)) << "memccp: " << c.err;
  std::vector<std::string> cat = {find_program("memccat"), servers};  // memccp's keys: the file names
  for (int i = 0; i < 3; ++i) cat.push_back("value" + std::to_string(i));
  Outcome got = run(cat);
  EXPECT_TRUE(got.exited(0)) << "memccat: " << got.err;
  r.stored = got.out;
  Outcome slap = run({find_program("memcslap"), servers, "--concurrency=4", "--execute-number=300"});
  r.slap_ok = slap.exited(0);
  r.slap_output = slap.out + slap.err;
  r.server_status = server.stop();
  return r;
}

TEST(RealPrograms, MemcachedServesLibmemcachedClientsAsNatively) {
  REQUIRE_PROGRAM(memcached, "memcached", "memcached");
  for (const char* client : {"memccp", "memccat", "memcslap"}) {
    if (find_program(client).empty()) {
      GTEST_SKIP() << client << " is not installed (Debian package libmemcached-tools; scripts/install-deps.sh)";
    }
  }
  ScratchDir dir;
  ClientResults native = drive_memcached(memcached, nullptr, dir);
  ASSERT_FALSE(native.stored.empty());
  ASSERT_TRUE(native.slap_ok) << native.slap_output;
  for (const auto& options : std::vector<std::vector<std::string>>{{}, {"--preempt", "timer", "--quantum-us", "100"}}) {
    ClientResults sky = drive_memcached(memcached, &options, dir);
    EXPECT_TRUE(sky.stored == native.stored) << describe(options) << ": memccat read back other bytes";
    EXPECT_TRUE(sky.slap_ok) << describe(options) << ": memcslap failed:\n" << sky.slap_output;
    EXPECT_EQ(sky.server_status, native.server_status) << describe(options) << ": memcached's status on SIGTERM";
  }
}

}  // namespace
