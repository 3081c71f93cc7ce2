// runner.cpp - the child processes of one series (fork with PR_SET_PDEATHSIG, waits with deadlines, stops
// with a grace period), the signal handler that kills them, and run_series: the daemon's socket directory,
// the start-up checks, the LC app's time budget and other processes' CPU share.
#include "runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "apps.hpp"

namespace lcbe {

namespace {

// ---- children: started, watched, stopped on every path ----

// The live children and the daemon's directory, for the signal handler (async-signal-safe use only).
volatile sig_atomic_t g_pids[3] = {0, 0, 0};
char g_socket[256] = {};
char g_dir[256] = {};

void kill_children_now() {
  for (auto& p : g_pids) {
    if (p > 0) ::kill(p, SIGKILL);
  }
  if (g_socket[0] != '\0') ::unlink(g_socket);
  if (g_dir[0] != '\0') ::rmdir(g_dir);
}

}  // namespace

void on_signal(int sig) {
  kill_children_now();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

namespace {

pid_t spawn_child(int slot, const std::function<int()>& body) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    _exit(body());
  }
  if (pid > 0) g_pids[slot] = pid;
  return pid;
}

// Waits for `pid` until `deadline_ns`; its exit status, or nullopt when it is still running.
std::optional<int> wait_until(pid_t pid, std::uint64_t deadline_ns) {
  for (;;) {
    int st = 0;
    const pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (r < 0 && errno != EINTR) return -1;
    if (bench::now_ns() >= deadline_ns) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Stops child `slot`: lets it end by itself for `grace_ms`, then sends `sig`, then SIGKILL after a
// second; reaps it.
void stop_child(int slot, int grace_ms, int sig) {
  const pid_t pid = g_pids[slot];
  if (pid <= 0) return;
  if (wait_until(pid, bench::now_ns() + static_cast<std::uint64_t>(grace_ms) * 1'000'000)) {
    g_pids[slot] = 0;
    return;
  }
  ::kill(pid, sig);
  if (!wait_until(pid, bench::now_ns() + 1'000'000'000)) {
    ::kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  g_pids[slot] = 0;
}

enum Slot { kDaemon = 0, kBe = 1, kLc = 2 };

}  // namespace

SeriesResult run_series(const Plan& plan, int run, Series s, Shared* sh) {
  SeriesResult out;
  new (sh) Shared();
  std::string socket;
  const bench::CpuSnap before = bench::cpu_snap();
  rusage ru0{};
  getrusage(RUSAGE_CHILDREN, &ru0);
  auto cleanup = [&] {
    sh->be_stop.store(1);
    stop_child(kLc, 0, SIGKILL);     // only still running on an error path
    stop_child(kBe, 2000, SIGTERM);  // told to stop: its tasks return and it unregisters
    stop_child(kDaemon, 0, SIGTERM);
    if (g_socket[0] != '\0') ::unlink(g_socket);
    if (g_dir[0] != '\0') ::rmdir(g_dir);
    g_socket[0] = g_dir[0] = '\0';
  };
  auto fail = [&](std::string e) {
    if (sh->error[0] != '\0') e += std::string(": ") + sh->error;
    cleanup();
    out.error = std::move(e);
    return out;
  };
  if (on_skyloft(s)) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/skyloft-lcbe-XXXXXX";
    if (tmpl.size() >= sizeof g_dir - 16 || mkdtemp(tmpl.data()) == nullptr) return fail("cannot create a directory for the daemon's socket");
    std::snprintf(g_dir, sizeof g_dir, "%s", tmpl.c_str());
    socket = tmpl + "/skyloftd.sock";
    std::snprintf(g_socket, sizeof g_socket, "%s", socket.c_str());
    const std::string log = tmpl + "/skyloftd.log";
    spawn_child(kDaemon, [&] {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) dup2(fd, 2);
      execl(plan.skyloftd.c_str(), plan.skyloftd.c_str(), "--cores", plan.cores_text.c_str(), "--socket", socket.c_str(), nullptr);
      std::fprintf(stderr, "cannot run %s: %s\n", plan.skyloftd.c_str(), std::strerror(errno));
      return 127;
    });
    const std::uint64_t deadline = bench::now_ns() + 5'000'000'000;
    while (access(socket.c_str(), F_OK) != 0) {
      if (wait_until(g_pids[kDaemon], bench::now_ns()).has_value() || bench::now_ns() > deadline) {
        g_pids[kDaemon] = 0;
        std::string why;
        std::ifstream in(log);
        std::getline(in, why);
        ::unlink(log.c_str());
        return fail(fmt::format("skyloftd ({}) did not start{}", plan.skyloftd, why.empty() ? "" : ": " + why));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::unlink(log.c_str());  // open in the daemon still; gone with it
  }
  if (has_be(s)) {
    spawn_child(kBe, [&] { return be_child(plan, s, sh, socket); });
    const std::uint64_t deadline = bench::now_ns() + 10'000'000'000;
    while (sh->be_ready.load() == 0 || be_units_sum(sh) == 0) {
      if (sh->error[0] != '\0' || bench::now_ns() > deadline || wait_until(g_pids[kBe], bench::now_ns()).has_value()) {
        g_pids[kBe] = 0;
        return fail("the BE app did not start");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  spawn_child(kLc, [&] { return lc_child(plan, run, s, sh, socket); });
  const double point_s = static_cast<double>(plan.warmup_ns + plan.duration_ns + plan.drain_ns) / 1e9 + 0.05;
  const auto budget_ns = static_cast<std::uint64_t>((static_cast<double>(plan.loads.size()) * point_s * 3 + 20) * 1e9);
  std::optional<int> rc = wait_until(g_pids[kLc], bench::now_ns() + budget_ns);
  if (!rc) return fail(fmt::format("the LC app did not finish within {:.0f} s ({} of {} points done)",
                                   static_cast<double>(budget_ns) / 1e9, sh->npoints.load(), plan.loads.size()));
  g_pids[kLc] = 0;
  if (*rc != 0) return fail(fmt::format("the LC app exited with status {}", *rc));
  cleanup();
  if (sh->error[0] != '\0') {
    out.error = sh->error;
    return out;
  }
  for (std::uint32_t i = 0; i < sh->npoints.load() && i < kMaxPoints; ++i) out.points.push_back(sh->points[i]);
  const bench::CpuSnap after = bench::cpu_snap();
  rusage ru1{};
  getrusage(RUSAGE_CHILDREN, &ru1);
  auto secs = [](const rusage& r) {
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  if (before.ok && after.ok && after.total > before.total) {
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double ours = (secs(ru1) - secs(ru0)) * tick + static_cast<double>(after.self - before.self);
    const double busy = static_cast<double>(after.busy - before.busy);
    out.others_pct = std::max(0.0, 100.0 * (busy - ours) / static_cast<double>(after.total - before.total));
  }
  return out;
}

}  // namespace lcbe
