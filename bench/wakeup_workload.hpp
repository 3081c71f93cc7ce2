// wakeup_workload.hpp - the schbench-style wake-up workload shared by skyloft_wakeup (skyloft tasks and
// native threads, wakeup/) and skyloft_wakeup_pthread (a plain pthread program for skyloft-run,
// wakeup_pthread.cpp). The model is described at the top of wakeup/main.cpp.
//
// Only the C++ standard library here: the pthread build must not depend on skyloft. The loop is generic
// over the mutex and condition variable types; the one skyloft call of the work, the preempt point per
// matrix row, comes in as a function pointer (null: none).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace skyloft::bench::wakeup {

// steady_clock now, in nanoseconds.
inline std::uint64_t clock_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

using PreemptPoint = void (*)() noexcept;

// ---------------------------------------------------------------------------------------------------------
// The work: C = A x B on N x N unsigned longs (schbench's do_some_math), a preempt point per row.

struct Matrices {
  std::size_t n = 0;
  std::vector<unsigned long> a, b, c;
  explicit Matrices(std::size_t n_) : n(n_), a(n_ * n_), b(n_ * n_), c(n_ * n_) {
    for (std::size_t i = 0; i < n * n; ++i) {
      a[i] = i * 7 + 1;
      b[i] = i * 13 + 3;
    }
  }
};

__attribute__((noinline)) inline void multiply(Matrices& m, PreemptPoint point) {
  const std::size_t n = m.n;
  const unsigned long* a = m.a.data();
  const unsigned long* b = m.b.data();
  unsigned long* c = m.c.data();
  for (std::size_t i = 0; i < n; ++i) {
    if (point != nullptr) point();
    for (std::size_t j = 0; j < n; ++j) {
      unsigned long sum = 0;
      for (std::size_t k = 0; k < n; ++k) sum += a[i * n + k] * b[k * n + j];
      c[i * n + j] = sum;
    }
  }
  asm volatile("" : : "r"(c) : "memory");
}

// Microseconds of one multiply at N: the fastest of `reps` runs, or their median (the upper middle one).
inline double time_multiply_us(std::size_t n, int reps, bool min_only = true) {
  Matrices m(n);
  multiply(m, nullptr);
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    std::uint64_t t0 = clock_ns();
    multiply(m, nullptr);
    t.push_back(static_cast<double>(clock_ns() - t0) / 1e3);
  }
  std::sort(t.begin(), t.end());
  return min_only ? t.front() : t[t.size() / 2];
}

// Finds N so that one multiply takes about target_us. Uses the fastest of a few runs (robust against other
// processes taking the core); returns N and the median time of 15 runs at that N.
inline std::pair<std::size_t, double> calibrate(double target_us) {
  std::size_t n = 32;
  double us = time_multiply_us(n, 5);
  for (int round = 0; round < 6; ++round) {
    double scale = std::cbrt(target_us / std::max(us, 0.01));
    std::size_t next =
        std::clamp<std::size_t>(static_cast<std::size_t>(std::lround(static_cast<double>(n) * scale)), 4, 4096);
    if (next == n) break;
    n = next;
    us = time_multiply_us(n, 7);
    if (std::fabs(us - target_us) / target_us < 0.03) break;
  }
  return {n, time_multiply_us(n, 15, false)};
}

// ---------------------------------------------------------------------------------------------------------
// The schbench loop. Who writes what: the controlling thread sets `measuring` and `stop`; a worker's
// samples are its own until the threads are joined; everything else is under the named mutex.

struct Shared {
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  PreemptPoint point = nullptr;
};

template <class M, class CV>
struct MessageThread;

template <class M, class CV>
struct alignas(64) Worker {
  M m;
  CV cv;
  bool posted = false;        // protected by m
  std::uint64_t wake_ns = 0;  // protected by m: the message thread's stamp
  MessageThread<M, CV>* msg = nullptr;
  std::unique_ptr<Matrices> mat;
  std::vector<std::uint64_t> wake_samples;  // ns
  std::vector<std::uint64_t> req_samples;   // ns
  std::uint64_t requests = 0;

  void run(Shared& sh) {
    for (;;) {
      {
        std::unique_lock<M> lk(msg->m);
        msg->pending.push_back(this);
      }
      msg->cv.notify_one();
      std::uint64_t stamp;
      {
        std::unique_lock<M> lk(m);
        cv.wait(lk, [&] { return posted; });
        posted = false;
        stamp = wake_ns;
      }
      const std::uint64_t running = clock_ns();
      if (sh.stop.load(std::memory_order_acquire)) break;
      if (sh.measuring.load(std::memory_order_relaxed)) wake_samples.push_back(running - stamp);
      const std::uint64_t t0 = clock_ns();
      multiply(*mat, sh.point);
      const std::uint64_t t1 = clock_ns();
      if (sh.measuring.load(std::memory_order_relaxed)) {
        req_samples.push_back(t1 - t0);
        ++requests;
      }
    }
    {
      std::unique_lock<M> lk(msg->m);
      --msg->live;
    }
    msg->cv.notify_one();
  }
};

template <class M, class CV>
struct MessageThread {
  M m;
  CV cv;
  std::vector<Worker<M, CV>*> pending;  // protected by m
  int live = 0;                         // workers not yet exited; protected by m

  void run() {
    std::vector<Worker<M, CV>*> batch;
    batch.reserve(64);
    for (;;) {
      {
        std::unique_lock<M> lk(m);
        cv.wait(lk, [&] { return !pending.empty() || live == 0; });
        if (pending.empty() && live == 0) break;
        batch.swap(pending);
      }
      const std::uint64_t stamp = clock_ns();  // once per list run, as schbench does
      for (auto* w : batch) {
        {
          std::unique_lock<M> lk(w->m);
          w->wake_ns = stamp;
          w->posted = true;
        }
        w->cv.notify_one();
      }
      batch.clear();
    }
  }
};

// ---------------------------------------------------------------------------------------------------------
// Results

struct Pct {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;  // microseconds
};

// Nearest-rank percentiles (rank ceil(q * n)) of v, which is sorted here.
inline Pct percentiles(std::vector<std::uint64_t>& v) {
  Pct p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    std::size_t rank = std::clamp<std::size_t>(static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))),
                                               1, v.size());
    return static_cast<double>(v[rank - 1]) / 1e3;
  };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  p.p999 = at(0.999);
  p.max = static_cast<double>(v.back()) / 1e3;
  return p;
}

struct Measured {
  Pct wake, req;
  double rps = 0;
  double window_s = 0;
  std::size_t wake_samples = 0;
  std::uint64_t requests = 0;
};

// One run of the loop: message threads and workers (worker i belongs to message thread i mod nmsg). The
// caller starts a thread or task for each (`msgs[i]->run()`, `workers[i]->run(sh)`), calls drive() from
// its own thread, joins them all, then collect().
template <class M, class CV>
struct Cell {
  Shared sh;
  std::vector<std::unique_ptr<MessageThread<M, CV>>> msgs;
  std::vector<std::unique_ptr<Worker<M, CV>>> workers;

  // `reserve`: samples each worker's vectors hold without growing during the window.
  Cell(int nworkers, int nmsg, std::size_t matrix_n, PreemptPoint point, std::size_t reserve) {
    sh.point = point;
    for (int i = 0; i < nmsg; ++i) msgs.push_back(std::make_unique<MessageThread<M, CV>>());
    for (int i = 0; i < nworkers; ++i) {
      auto w = std::make_unique<Worker<M, CV>>();
      w->msg = msgs[static_cast<std::size_t>(i % nmsg)].get();
      w->msg->live++;
      w->mat = std::make_unique<Matrices>(matrix_n);
      w->wake_samples.reserve(reserve);
      w->req_samples.reserve(reserve);
      workers.push_back(std::move(w));
    }
  }

  // Warm-up (samples dropped), the measured window, then the stop. on_window(true) runs just before the
  // window opens, on_window(false) just after it closes. Returns the window's length in seconds.
  template <class OnWindow>
  double drive(double warmup_s, double seconds, OnWindow&& on_window) {
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long>(warmup_s * 1e6)));
    on_window(true);
    const std::uint64_t t0 = clock_ns();
    sh.measuring.store(true);
    std::this_thread::sleep_until(std::chrono::steady_clock::now() +
                                  std::chrono::microseconds(static_cast<long>(seconds * 1e6)));
    sh.measuring.store(false);
    const std::uint64_t t1 = clock_ns();
    on_window(false);
    sh.stop.store(true, std::memory_order_release);
    return static_cast<double>(t1 - t0) / 1e9;
  }

  Measured collect(double window_s) {
    Measured r;
    std::vector<std::uint64_t> wake, req;
    for (auto& w : workers) {
      wake.insert(wake.end(), w->wake_samples.begin(), w->wake_samples.end());
      req.insert(req.end(), w->req_samples.begin(), w->req_samples.end());
      r.requests += w->requests;
    }
    r.window_s = window_s;
    r.wake_samples = wake.size();
    r.wake = percentiles(wake);
    r.req = percentiles(req);
    r.rps = window_s > 0 ? static_cast<double>(r.requests) / window_s : 0;
    return r;
  }
};

}  // namespace skyloft::bench::wakeup
