// backend.cpp - choosing the I/O backend of a runtime, creating processors' pollers, and the core's hooks
// (config validation, shutdown quiescence and cancellation).
//
// Choice: Config::io_backend ("auto" | "uring" | "epoll") is resolved once per runtime, at its first I/O
// call: "auto" probes io_uring and falls back to epoll with one line on stderr; "uring" where io_uring is
// unavailable makes every I/O call fail with ENOSYS (one line on stderr says why). Pollers are created
// lazily by the first I/O call of a task on each processor: a runtime without I/O pays nothing, not even
// a ring, and its poll point stays one load.
#include <cstdio>
#include <mutex>

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

std::mutex g_choice_lock;
std::uint64_t g_choice_epoch = 0;                  // the runtime g_choice belongs to (g_choice_lock)
std::atomic<BackendKind> g_choice{BackendKind::none};
std::atomic<bool> g_logged{false};                 // the fallback line is printed once per process

void log_once(const std::string& line) {
  if (!g_logged.exchange(true)) std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace

BackendKind backend_for(RuntimeCore& rt) noexcept {
  std::lock_guard<std::mutex> g(g_choice_lock);
  if (g_choice_epoch == rt.epoch) return g_choice.load(std::memory_order_relaxed);
  BackendKind k = BackendKind::epoll;
  const std::string& want = rt.config.io_backend;
  if (want != "epoll") {
    const char* why = nullptr;
    if (probe_uring(&why)) {
      k = BackendKind::uring;
    } else if (want == "uring") {
      k = BackendKind::unavailable;
      log_once(fmt::format("skyloft: io_backend=uring but {}; I/O calls fail with ENOSYS", why));
    } else {
      log_once(fmt::format("skyloft: {}; I/O uses the epoll readiness backend", why));
    }
  }
  g_choice.store(k, std::memory_order_relaxed);
  g_choice_epoch = rt.epoch;
  return k;
}

IoPoller* poller_of(Processor* p) noexcept {
  if (p->io != nullptr) return static_cast<IoPoller*>(p->io);
  IoPoller* poller = nullptr;
  switch (backend_for(*p->rt)) {
    case BackendKind::uring: poller = make_uring_poller(*p); break;
    case BackendKind::epoll: poller = make_epoll_poller(*p); break;
    default: return nullptr;
  }
  if (poller == nullptr) return nullptr;
  p->io = poller;
  p->park.set_backend(poller);  // the owner sets it while running, so no park is in progress
  return poller;
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
  switch (io_detail::backend_for(*p->rt)) {
    case io_detail::BackendKind::uring: return "uring";
    case io_detail::BackendKind::epoll: return "epoll";
    default: return "unavailable";
  }
}

bool uring_available() {
  const char* why = nullptr;
  return io_detail::probe_uring(&why);
}

}  // namespace skyloft::io
