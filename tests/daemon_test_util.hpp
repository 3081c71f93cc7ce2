// daemon_test_util.hpp - real processes for the skyloftd tests: the daemon binary on a temporary socket,
// forked app processes driven over pipes, raw protocol peers, and running a program to collect its output.
//
// The built programs are found through SKYLOFTD_PATH / SKYLOFT_STAT_PATH, defined by tests/CMakeLists.txt.
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "child_process.hpp"
#include "multiapp/client.hpp"
#include "multiapp/protocol.hpp"
#include "multiapp/socket_io.hpp"
#include "skyloft/config.hpp"

namespace daemontest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace ma = skyloft::multiapp;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr int kSlow = 4;  // sanitized daemons start and react slower
#else
inline constexpr int kSlow = 1;
#endif

// A fresh directory (mode 0755, so a child that dropped to another uid can reach the socket in it).
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "skyloftd-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
    chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Cores for the daemon under test: at most `n` of the cores this process may use.
inline std::vector<int> test_cores(std::size_t n) {
  std::vector<int> c = skyloft::allowed_cores();
  if (c.size() > n) c.resize(n);
  return c;
}

// A program run to completion with its stdout and stderr captured.
struct RunResult {
  int exit_code = -1;
  std::string out, err;
};
inline RunResult run_program(std::vector<std::string> args, int timeout_s = 30) {
  TempDir dir;
  std::string out_path = dir.path() + "/out", err_path = dir.path() + "/err";
  pid_t pid = fork_test_child();
  if (pid == 0) {
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  RunResult r;
  auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << args[0] << " did not finish within " << timeout_s << " s";
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

// skyloftd started on a socket in its own temporary directory; killed at destruction.
class Daemon {
 public:
  explicit Daemon(std::vector<std::string> extra = {}, std::string socket = {}) : extra_(std::move(extra)) {
    socket_ = socket.empty() ? dir_.path() + "/skyloftd.sock" : std::move(socket);
    start();
  }
  ~Daemon() { stop(SIGKILL); }

  void start() {
    log_path_ = dir_.path() + "/skyloftd." + std::to_string(starts_++) + ".log";
    std::vector<std::string> args = {SKYLOFTD_PATH, "--socket", socket_, "--log-level", "debug"};
    bool has_cores = false;
    for (auto& e : extra_) has_cores |= e.rfind("--cores", 0) == 0;
    if (!has_cores) {
      args.push_back("--cores");
      args.push_back(skyloft::format_core_list(test_cores(2)));
    }
    args.insert(args.end(), extra_.begin(), extra_.end());
    pid_ = fork_test_child();
    if (pid_ == 0) {
      int e = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(e, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    // Ready when the socket accepts a connection (a stale file from a killed daemon does not).
    auto deadline = Clock::now() + 10s * kSlow;
    while (Clock::now() < deadline) {
      int fd = ma::connect_unix(socket_);
      if (fd >= 0) {
        close(fd);
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("skyloftd exited at start: " + log());
      }
      std::this_thread::sleep_for(5ms);
    }
    throw std::runtime_error("skyloftd did not listen within 10 s: " + log());
  }
  // Sends `sig` and reaps; returns the exit code (128+signal if killed), -1 if not running.
  int stop(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  const std::string& socket() const { return socket_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return read_file(log_path_); }

 private:
  TempDir dir_;
  std::vector<std::string> extra_;
  std::string socket_, log_path_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

// Reads one line from `fd` within timeout; nullopt on timeout or EOF.
inline std::optional<std::string> read_line(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (poll(&p, 1, std::max(left, 1)) <= 0) continue;
    char ch;
    ssize_t n = read(fd, &ch, 1);
    if (n <= 0) return std::nullopt;
    if (ch == '\n') return line;
    line += ch;
  }
  return std::nullopt;
}

inline void write_line(int fd, const std::string& s) {
  std::string l = s + "\n";
  ssize_t ignored = write(fd, l.data(), l.size());
  (void)ignored;
}

// A forked app process that registers with DaemonClient and then obeys one-letter commands over a pipe:
//   u: unregister and exit 0      x: exit without unregistering
//   w: wait until the daemon connection is lost, answer "lost <old epoch, read from the old mapping>"
//   r: reconnect (re-register), answer like the first registration
//   b: answer "busy", then for 3 s report holding core index 0 full time (cpu_ns, switches), then "done"
// Its first line is "ok <id> <generation> <epoch hex> <cores>" or "err <message>".
class AppProcess {
 public:
  AppProcess(const std::string& socket, const std::string& name, ma::AppClass cls, int demand = 1) {
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    pid_ = fork_test_child();
    if (pid_ == 0) {
      close(to[1]);
      close(from[0]);
      child_main(socket, name, cls, demand, to[0], from[1]);
    }
    close(to[0]);
    close(from[1]);
    to_ = to[1];
    from_ = from[0];
    first_ = read_line(from_, 10s * kSlow).value_or("err no answer");
  }
  ~AppProcess() {
    kill_now();
    close(to_);
    close(from_);
  }
  // "ok ..." or "err ...".
  const std::string& first_line() const { return first_; }
  bool ok() const { return first_.rfind("ok ", 0) == 0; }
  std::uint32_t id() const { return field(1); }
  std::uint32_t generation() const { return field(2); }
  std::string cores() const { return word(4); }
  std::string epoch() const { return word(3); }
  pid_t pid() const { return pid_; }

  std::optional<std::string> command(char c, std::chrono::milliseconds timeout = 10s * kSlow) {
    write_line(to_, std::string(1, c));
    if (c == 'x') return std::string();
    return read_line(from_, timeout);
  }
  void kill_now() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Sends SIGKILL without reaping, for timing how fast the daemon notices.
  void kill_no_wait() { kill(pid_, SIGKILL); }
  void reap() {
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void adopt(std::string first) { first_ = std::move(first); }

 private:
  std::string word(int i) const {
    std::istringstream s(first_);
    std::string w;
    for (int k = 0; k <= i; ++k) s >> w;
    return w;
  }
  std::uint32_t field(int i) const { return static_cast<std::uint32_t>(std::stoul(word(i))); }

  [[noreturn]] static void child_main(const std::string& socket, const std::string& name, ma::AppClass cls, int demand,
                                      int in, int out) {
    auto describe = [](ma::DaemonClient& c) {
      return fmt::format("ok {} {} {:08x} {}", c.app_id(), c.generation(), c.epoch(),
                         c.granted_cores().empty() ? "-" : skyloft::format_core_list(c.granted_cores()));
    };
    std::unique_ptr<ma::DaemonClient> client;
    try {
      client = std::make_unique<ma::DaemonClient>(ma::ClientOptions{socket, name, cls, static_cast<std::uint16_t>(demand), 5000 * kSlow});
      client->report_state(ma::AppRunState::running);
      write_line(out, describe(*client));
    } catch (const std::exception& e) {
      write_line(out, std::string("err ") + e.what());
      _exit(1);
    }
    for (;;) {
      auto cmd = read_line(in, std::chrono::hours(1));
      if (!cmd) _exit(0);
      if (*cmd == "u") {
        client->unregister();
        write_line(out, "unregistered");
        _exit(0);
      } else if (*cmd == "x") {
        _exit(0);
      } else if (*cmd == "w") {
        auto deadline = Clock::now() + 20s;
        while (!client->connection_lost() && Clock::now() < deadline) std::this_thread::sleep_for(2ms);
        // The old region is still mapped and usable.
        client->descriptor().tasks.store(7);
        write_line(out, fmt::format("lost {:08x} {}", client->region().control().epoch, client->descriptor().tasks.load()));
      } else if (*cmd == "b") {
        write_line(out, "busy");
        ma::AppCoreStats& st = client->descriptor().cores[0];
        client->descriptor().tasks.store(3);
        st.runqueue_len.store(2);
        st.switches_in.fetch_add(1);
        auto start = Clock::now(), last = start;
        while (Clock::now() - start < 3s) {
          std::this_thread::sleep_for(1ms);
          auto t = Clock::now();
          st.cpu_ns.fetch_add(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t - last).count()));
          last = t;
        }
        st.switches_out.fetch_add(1);
        write_line(out, "done");
      } else if (*cmd == "r") {
        try {
          client->reconnect(10000 * kSlow);
          write_line(out, describe(*client));
        } catch (const std::exception& e) {
          write_line(out, std::string("err ") + e.what());
        }
      }
    }
  }

  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string first_;
};

// A raw peer: sends arbitrary bytes and reads what comes back.
class RawPeer {
 public:
  explicit RawPeer(const std::string& socket) : fd_(ma::connect_unix(socket)) {
    if (fd_ < 0) throw std::runtime_error("cannot connect to " + socket);
  }
  ~RawPeer() {
    if (fd_ >= 0) close(fd_);
  }
  void send(const std::vector<std::uint8_t>& bytes) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ASSERT_EQ(n, static_cast<ssize_t>(bytes.size()));
  }
  ma::Received receive(int timeout_ms = 5000 * kSlow) { return ma::receive_message(fd_, timeout_ms); }
  // True if the daemon closed the connection within the timeout: end-of-file, or ECONNRESET when it closed
  // with bytes of ours still unread (it refused a header and did not read the body).
  bool closed_by_daemon(int timeout_ms = 5000 * kSlow) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[64];
    ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Waits until `pred` holds on a fresh control snapshot; returns the time it took, or nullopt.
template <class Pred>
std::optional<std::chrono::microseconds> wait_for(const ma::MappedRegion& r, Pred pred, std::chrono::milliseconds limit) {
  auto start = Clock::now();
  ma::ControlSnapshot snap;
  while (Clock::now() - start < limit) {
    if (ma::read_control(r.control(), snap) && pred(snap)) {
      return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
    }
    std::this_thread::sleep_for(200us);
  }
  return std::nullopt;
}

}  // namespace daemontest
