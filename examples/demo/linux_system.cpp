// linux_system.cpp - the kernel-thread systems: a thread pool on one mutex/condvar FIFO queue (one thread
// per core), many threads each with a mailbox (optionally with an EEVDF custom slice each), or one
// std::thread per request.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

#include <fmt/core.h>

#include "systems.hpp"

namespace demo {
namespace {

// A kernel-thread system that hangs is a bug in this file, not in the system under test.
[[noreturn]] void fatal_hang(const RunSettings& rs, const std::string& label, std::size_t left, std::size_t n) {
  std::fflush(stdout);
  fmt::print(stderr, "skyloft_demo: {} in '{}' (a bug in the demo's baseline)\n  repro: {}\n",
             hang_status(rs, left, n), label, rs.repro);
  std::exit(3);
}

// What every thread of a pool does first: confine itself to the cores under test and ask for its slice.
// Keeps the kernel's refusal, if any, for the report.
class ThreadSetup {
 public:
  ThreadSetup(const std::vector<int>& cores, u32 slice_us) : cores_(cores), slice_us_(slice_us) {}
  void apply() {
    confine_to(cores_);
    if (std::string e = set_thread_slice_us(slice_us_); !e.empty()) {
      std::lock_guard lk(m_);
      error_ = std::move(e);
    }
  }
  std::string error() {
    std::lock_guard lk(m_);
    return error_;
  }

 private:
  const std::vector<int>& cores_;
  const u32 slice_us_;
  std::mutex m_;
  std::string error_;  // protected by m_
};

// The pool: `nthreads` threads, each with `slice_us` (0: the default slice), taking requests in FIFO order.
class Pool {
 public:
  Pool(std::size_t nthreads, const std::vector<int>& cores, u32 slice_us, Workload& w, Countdown& left)
      : setup_(cores, slice_us) {
    threads_.reserve(nthreads);
    for (std::size_t t = 0; t < nthreads; ++t) {
      threads_.emplace_back([this, &w, &left] {
        setup_.apply();
        std::unique_lock lk(m_);
        for (;;) {
          cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
          if (queue_.empty()) return;  // stop requested and nothing left
          const u32 i = queue_.front();
          queue_.pop_front();
          lk.unlock();
          w.execute(i);
          left.count_down();
          lk.lock();
        }
      });
    }
  }
  ~Pool() {
    {
      std::lock_guard lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void submit(u32 i) {
    {
      std::lock_guard lk(m_);
      queue_.push_back(i);
    }
    cv_.notify_one();
  }
  std::string slice_error() { return setup_.error(); }

 private:
  ThreadSetup setup_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<u32> queue_;    // protected by m_
  bool stop_ = false;        // protected by m_
  std::vector<std::thread> threads_;
};

// Many threads, one lock-free mailbox each: the generator hands each request to the thread with the fewest
// unfinished requests (an idle one when there is one), so the kernel sees one runnable thread per request
// in flight and time-slices them, as it would threads created per request, without the creation cost.
// No lock is shared: a shared mutex queue (Pool) under 64 threads convoys, because a thread preempted while
// holding it stalls the generator for a kernel slice (measured: tens of ms of generator lag), and this is
// the pool design a careful user would pick for many threads.
//
// Per mailbox: `tail` is written by the generator only, `taken` and `done` by its thread only, `waiting`
// by its thread (and read by the generator), `signal` by the generator and stop(). slots[k] is written
// before tail passes k (release) and read after (acquire); each mailbox holds at most the whole plan, so
// the slots never wrap. Sleeping is an eventcount: the thread reads `signal`, sets `waiting`, re-checks
// tail and stop, and futex-waits on `signal`; the generator publishes tail, then bumps `signal` and wakes
// if it sees `waiting` (both sides seq_cst, so one of them sees the other).
class Mailboxes {
 public:
  Mailboxes(std::size_t nthreads, const std::vector<int>& cores, u32 slice_us, Workload& w, Countdown& left)
      : setup_(cores, slice_us), boxes_(nthreads) {
    for (auto& b : boxes_) b.slots.resize(w.recs.size());
    threads_.reserve(nthreads);
    for (std::size_t t = 0; t < nthreads; ++t) {
      threads_.emplace_back([this, t, &w, &left] {
        setup_.apply();
        serve(boxes_[t], w, left);
      });
    }
  }
  ~Mailboxes() {
    stop_.store(true);
    for (auto& b : boxes_) {
      b.signal.fetch_add(1);
      futex_wake(b.signal);
    }
    for (auto& t : threads_) t.join();
  }
  void submit(u32 i) {
    Box* best = &boxes_[next_ % boxes_.size()];  // ties go round robin
    for (std::size_t k = 0; k < boxes_.size(); ++k) {
      Box& b = boxes_[(next_ + k) % boxes_.size()];
      if (b.outstanding() < best->outstanding()) best = &b;
      if (best->outstanding() == 0) break;
    }
    ++next_;
    const u32 t = best->tail.load(std::memory_order_relaxed);
    best->slots[t] = i;
    best->tail.store(t + 1, std::memory_order_seq_cst);
    if (best->waiting.load(std::memory_order_seq_cst) != 0) {
      best->signal.fetch_add(1, std::memory_order_seq_cst);
      futex_wake(best->signal);
    }
  }
  std::string slice_error() { return setup_.error(); }

 private:
  struct alignas(64) Box {
    std::atomic<u32> tail{0};     // requests handed over (generator)
    std::atomic<u32> done{0};     // requests finished (its thread)
    std::atomic<u32> waiting{0};  // 1 while its thread sleeps or is about to (its thread)
    std::atomic<u32> signal{0};   // futex word (generator, stop)
    u32 taken = 0;                // requests taken (its thread only)
    std::vector<u32> slots;
    u32 outstanding() const {
      return tail.load(std::memory_order_relaxed) - done.load(std::memory_order_relaxed);
    }
  };

  static void futex_wake(std::atomic<u32>& word) {
    ::syscall(SYS_futex, reinterpret_cast<u32*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }

  void serve(Box& b, Workload& w, Countdown& left) {
    for (;;) {
      if (b.taken < b.tail.load(std::memory_order_acquire)) {
        w.execute(b.slots[b.taken++]);
        b.done.store(b.taken, std::memory_order_relaxed);
        left.count_down();
        continue;
      }
      const u32 seen = b.signal.load(std::memory_order_seq_cst);
      b.waiting.store(1, std::memory_order_seq_cst);
      if (b.taken == b.tail.load(std::memory_order_seq_cst)) {
        if (stop_.load(std::memory_order_seq_cst)) return;
        ::syscall(SYS_futex, reinterpret_cast<u32*>(&b.signal), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
      }
      b.waiting.store(0, std::memory_order_relaxed);
    }
  }

  ThreadSetup setup_;
  std::vector<Box> boxes_;
  std::size_t next_ = 0;           // the generator's round-robin start
  std::atomic<bool> stop_{false};  // written by the destructor
  std::vector<std::thread> threads_;
};

// One detached std::thread per request; creation failing with EAGAIN (too many threads) is retried.
void spawn_thread(Workload& w, Countdown& left, u32 i) {
  for (int attempt = 0;; ++attempt) {
    try {
      std::thread([&w, &left, i] {
        w.execute(i);
        left.count_down();
      }).detach();
      return;
    } catch (const std::system_error&) {
      if (attempt > 10000) {
        left.count_down();  // counted as not completed (done == 0)
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

}  // namespace

RunOutcome run_linux(const SystemSpec& s, const RunSettings& rs, const Plan& plan, const Calibration& cal) {
  using T = SystemSpec::Threads;
  RunOutcome out;
  out.label = label_of(s, rs);
  Workload w(&plan, &cal);
  const auto n = static_cast<u32>(w.recs.size());
  Countdown left(n);
  std::atomic<u32> submitted{0};
  const std::size_t nthreads = s.threads == T::per_core ? rs.cores.size() : rs.linux_threads;
  const u32 slice = s.tuned_slice ? rs.linux_slice_us : 0;
  std::optional<Pool> pool;
  std::optional<Mailboxes> boxes;
  if (s.threads == T::per_core) pool.emplace(nthreads, rs.cores, slice, w, left);
  if (s.threads == T::many) boxes.emplace(nthreads, rs.cores, slice, w, left);
  out.workers = s.threads == T::per_request ? "1/req" : std::to_string(nthreads);

  const double cpu0 = cpu_seconds();
  GenResult g;
  std::thread gen([&] {
    // Thread-per-request threads inherit the generator's affinity: the cores under test.
    g = generate(w, rs.cores, rs.gen, submitted, [&](u32 i) {
      if (pool) pool->submit(i);
      else if (boxes) boxes->submit(i);
      else spawn_thread(w, left, i);
    });
  });
  const bool finished = wait_with_watchdog(
      rs, submitted, [&](std::chrono::milliseconds d) { return left.wait_for(d); }, [&] { return left.left(); });
  if (!finished) fatal_hang(rs, out.label, left.left(), n);
  out.cpu_s = cpu_seconds() - cpu0;
  gen.join();
  const std::string slice_error = pool ? pool->slice_error() : boxes ? boxes->slice_error() : std::string();
  if (!slice_error.empty()) out.status = "slice not set: " + slice_error;
  pool.reset();
  boxes.reset();
  out.gen = g;
  if (!out.gen.sched_error.empty() && out.status == "ok") out.status = "generator: " + out.gen.sched_error;
  out.work.emplace(std::move(w));
  return out;
}

}  // namespace demo
