// backend.cpp - choosing the I/O backend of a runtime, creating processors' pollers, and the core's hooks
// (config validation, shutdown quiescence and cancellation).
//
// Choice: Config::io_backend ("auto" | "uring" | "epoll") is resolved at runtime start: "auto" probes
// io_uring (once per process) and falls back to epoll with one line on stderr; "uring" where io_uring is
// unavailable makes every I/O call fail with ENOSYS (one line on stderr says why).
// Pollers are created at start, for every processor, rather than at the first I/O call: p->io is then
// read-only while processors run (no publication protocol), and every processor can reap for the others
// (poller.hpp R2). A runtime that does no I/O pays a ring per processor (fds and ~100 KiB), and nothing
// at the poll point (kPollIo stays clear: one load) or when it parks (the plain futex, as before).
#include <cstdio>
#include <algorithm>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "core/runtime_core.hpp"
#include "core/scheduler.hpp"
#include "io/poller.hpp"
#include "skyloft/config.hpp"
#include "skyloft/io.hpp"
#include "skyloft/wait.hpp"

namespace skyloft {
namespace io_detail {
namespace {

// The running runtime's I/O state (one runtime per process). Written by io_start before the processors
// run and by io_shutdown after they stopped; read-only in between, except busy_pollers.
struct IoShared {
  RuntimeCore* rt = nullptr;
  BackendKind kind = BackendKind::none;
  std::vector<IoPoller*> pollers;
  alignas(64) std::atomic<std::uint32_t> busy_pollers{0};  // pollers with operations in flight (R1)
};
// Never destroyed: workers may still poll while exit() runs the static destructors (a program's main
// returning under skyloft-run ends the process with its workers running).
IoShared& g_io = *new IoShared;

std::mutex g_probe_lock;
int g_probed = -1;  // -1: not yet; 0/1: io_uring unusable/usable (g_probe_lock)
const char* g_probe_why = "";

bool uring_usable() {
  std::lock_guard<std::mutex> g(g_probe_lock);
  if (g_probed < 0) g_probed = probe_uring(&g_probe_why) ? 1 : 0;
  return g_probed == 1;
}

std::atomic<bool> g_logged{false};  // the fallback line is printed once per process
void log_once(const std::string& line) {
  if (!g_logged.exchange(true)) std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace

BackendKind current_backend() noexcept { return g_io.kind; }

void IoPoller::ops_added() noexcept {
  if (ops_.fetch_add(1, std::memory_order_seq_cst) != 0) return;
  g_io.busy_pollers.fetch_add(1, std::memory_order_seq_cst);
  for (auto& q : g_io.rt->procs) q->poll_bits.fetch_or(kPollIo, std::memory_order_relaxed);
}

void IoPoller::ops_removed(unsigned n) noexcept {
  if (n != 0 && ops_.fetch_sub(n, std::memory_order_seq_cst) == n) {
    g_io.busy_pollers.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void IoPoller::poll(Processor& p, std::uint64_t now) noexcept {
  last_poll_ns_.store(now, std::memory_order_relaxed);
  submit_pending();
  if (ops_in_flight() != 0) reap();
  if (now >= next_help_) {  // R2
    std::uint64_t interval = UINT64_MAX;
    for (IoPoller* q : g_io.pollers) {
      if (q == this) continue;
      interval = std::min(interval, q->help_interval_ns());
      if (q->ops_in_flight() == 0) continue;
      if (q->maybe_ready()) q->reap();
      q->nudge_if_stalled(now);
    }
    next_help_ = interval == 0 ? 0 : now + interval;
  }
  if (g_io.busy_pollers.load(std::memory_order_seq_cst) == 0) {  // R1: clear, then re-check
    p.poll_bits.fetch_and(~kPollIo, std::memory_order_seq_cst);
    if (g_io.busy_pollers.load(std::memory_order_seq_cst) != 0) p.poll_bits.fetch_or(kPollIo, std::memory_order_relaxed);
  }
}

bool IoPoller::waits_behind_task(std::uint64_t now, std::uint64_t stall_ns, std::uint64_t* look_again) noexcept {
  const std::uint64_t passed = last_poll_ns();  // R4
  if (now < passed + stall_ns) {
    *look_again = passed + stall_ns;
    return false;
  }
  if (ops_in_flight() != 0 && deliverable()) return true;
  *look_again = now + stall_ns;
  return false;
}

void await(Completion& c) noexcept {
  while (c.done.load(std::memory_order_acquire) == 0) wait_address(c.done, 0, kNoDeadline, WaitReason::io);
}

void complete(Completion* c, std::int32_t res) noexcept {
  c->res = res;
  c->done.store(1, std::memory_order_seq_cst);
  wake_address(c->done);  // only the address: the waiter may already have returned
}

}  // namespace io_detail

void io_start(RuntimeCore& rt) {
  using namespace io_detail;
  g_io.rt = &rt;
  g_io.busy_pollers.store(0, std::memory_order_relaxed);
  const std::string& want = rt.config.io_backend;
  BackendKind k = BackendKind::epoll;
  if (want != "epoll") {
    if (uring_usable()) {
      k = BackendKind::uring;
    } else if (want == "uring") {
      k = BackendKind::unavailable;
      log_once(fmt::format("skyloft: io_backend=uring but {}; I/O calls fail with ENOSYS", g_probe_why));
    } else {
      log_once(fmt::format("skyloft: {}; I/O uses the epoll readiness backend", g_probe_why));
    }
  }
  g_io.kind = k;
  for (auto& p : rt.procs) {
    IoPoller* poller = nullptr;
    if (k == BackendKind::uring) poller = make_uring_poller(*p);
    if (k == BackendKind::epoll) poller = make_epoll_poller(*p);
    if (poller == nullptr) continue;  // that processor's I/O calls fail with ENOSYS
    p->io = poller;
    p->park.set_backend(poller);
    g_io.pollers.push_back(poller);
  }
}

void io_validate_backend(const std::string& name) {
  if (name != "auto" && name != "uring" && name != "epoll") {
    throw ConfigError(fmt::format("io_backend '{}' is unknown: use auto, uring or epoll", name));
  }
}

bool io_quiet(RuntimeCore& rt) noexcept {
  for (const auto& p : rt.procs) {
    if (p->io != nullptr && static_cast<io_detail::IoPoller*>(p->io)->timed_in_flight() != 0) return false;
  }
  return true;
}

void io_shutdown(RuntimeCore& rt, ShutdownReport& report) noexcept {
  using namespace io_detail;
  std::size_t cancelled = 0;
  for (auto& p : rt.procs) {
    auto* poller = static_cast<io_detail::IoPoller*>(p->io);
    if (poller == nullptr) continue;
    cancelled += poller->cancel_all();
    p->park.set_backend(&PrivateFutexBackend::instance());
    p->io = nullptr;
    p->poll_bits.fetch_and(~kPollIo, std::memory_order_relaxed);
    delete poller;
  }
  g_io.pollers.clear();
  g_io.kind = BackendKind::none;
  g_io.rt = nullptr;
  report.io_cancelled = cancelled;
  if (cancelled != 0) {
    std::fprintf(stderr, "skyloft: shutdown cancelled %zu I/O operation(s) in flight\n", cancelled);
  }
}

}  // namespace skyloft

namespace skyloft::io {

const char* backend_name() {
  Processor* p = this_proc();
  if (current_task() == nullptr || p == nullptr) return "thread";
  if (io_detail::poller_of(p) == nullptr) return "unavailable";
  switch (io_detail::current_backend()) {
    case io_detail::BackendKind::uring: return "uring";
    case io_detail::BackendKind::epoll: return "epoll";
    default: return "unavailable";
  }
}

bool uring_available() { return io_detail::uring_usable(); }

}  // namespace skyloft::io
