// inprocess.cpp - the in-process open-loop generator, as the original's synthetic evaluation had: no
// network stack in the measurement, requests created in the server's own process.
//
// The whole schedule of a point (intended arrival times, arrivals.hpp; service times, mix.hpp) is drawn
// first; then the arrivals are released in order when their time comes (Releaser), by one of:
//   * a generator thread (--generator thread): sleeps (or, with --gen-wait spin, spins) until each arrival;
//     --gen-core pins it. On a 2-core machine an unpinned sleeping generator shares the cores with the
//     server and is late by up to milliseconds when the server's threads are busy;
//   * the runtime's polling thread (--generator poller, Runtime::add_poller): the sq dispatcher or a ticker
//     with a core of its own releases every due arrival on each turn of its loop, as the original's
//     dispatcher did.
// A released request is submitted: on skyloft a task is spawned for it; on the Linux pool it is queued for
// the pool threads (one mutex-protected FIFO, a condition variable wakes a thread). The request runs the
// program's request code (ServerOptions::serve: the synthetic spin, or a RocksDB lookup) and stores its
// completion time in its own slot, so recording takes no lock. Latency counts from the intended arrival;
// the generator's lateness is reported as send lag.
//
// A point: warm-up, measured window, then a drain period; requests still unserved at its end are cancelled
// (they return at once when they start), counted as unanswered and recorded with their age.
#include <sys/prctl.h>
#include <time.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "bench_common.hpp"
#include "inprocess.hpp"
#include "pool.hpp"
#include "realtime.hpp"
#include "report.hpp"
#include "servers.hpp"
#include "skyloft/skyloft.hpp"
#include "spin.hpp"
#include "units.hpp"

namespace skyloft::synthetic {

void PointState::run(std::size_t slot) {
  if (!cancel.load(std::memory_order_relaxed)) {
    (void)(*serve)(wire::Request{op[slot], slot, service[slot], intended[slot]});
    done_at[slot] = skyloft::now_ns();
  }
  finished.fetch_add(1, std::memory_order_release);  // pairs with the generator's acquire load
}

LinuxPool::LinuxPool(const ServerOptions& o) {
  for (int i = 0, n = pool_size(o); i < n; ++i) {
    threads_.emplace_back([this, &o, i] {
      pool_pin(o, i);
      for (;;) {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l, [this] { return stop_ || !q_.empty(); });
        if (q_.empty()) return;
        auto [state, slot] = q_.front();
        q_.pop_front();
        l.unlock();
        state->run(slot);
      }
    });
  }
}

LinuxPool::~LinuxPool() {
  {
    std::lock_guard<std::mutex> l(m_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void LinuxPool::submit(PointState* s, std::size_t slot) {
  {
    std::lock_guard<std::mutex> l(m_);
    q_.emplace_back(s, slot);
  }
  cv_.notify_one();
}

namespace {

// The generator thread's wait for the intended time `t`: a sleep, spinning its last microseconds (closer
// than a sleep's own cost), or all of it a spin (--gen-wait spin: a core of its own, no wake-up lateness).
void wait_until_ns(std::uint64_t t, GenWait how) {
  if (how == GenWait::sleep && t > skyloft::now_ns() + 3000) {
    timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
    ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
  }
  while (skyloft::now_ns() < t) {
  }
}

// Releases a point's arrivals in order: everything whose intended time has come, each call. Used by one
// thread at a time (the generator thread, or the runtime's polling thread through a poller); `done` tells
// the point's thread when the last one has gone.
struct Releaser {
  PointState& st;
  const std::function<void(PointState*, std::size_t)>& submit;
  loadgen::PointResult& r;
  std::size_t next = 0;
  std::atomic<bool> done{false};  // written by the releasing thread, read by the point's thread

  void release_due(std::uint64_t now) {
    const std::size_t n = st.intended.size();
    while (next < n && st.intended[next] <= now) {
      const std::uint64_t intended = st.intended[next], actual = skyloft::now_ns();
      if (st.in_window(intended)) r.send_lag_ns.record(actual - std::min(actual, intended));
      if (st.in_window(actual)) ++r.sent_in_window;
      submit(&st, next);
      ++next;
    }
    if (next == n) done.store(true, std::memory_order_release);
  }
  static void poll(void* self, std::uint64_t now) { static_cast<Releaser*>(self)->release_due(now); }
};

}  // namespace

loadgen::PointResult run_point(const ServerOptions& o, double rate,
                               const std::function<void(PointState*, std::size_t)>& submit,
                               const std::function<void(const PointState&)>& inspect, skyloft::Runtime* poller_rt) {
  PointState st;
  st.serve = &o.serve;
  std::mt19937_64 rng(o.seed * 1000003 + static_cast<std::uint64_t>(rate));
  loadgen::ArrivalProcess arrivals(o.arrival, rate);
  const std::uint64_t t0 = skyloft::now_ns() + 10'000'000;
  const std::uint64_t measure_from = t0 + o.warmup_ns, send_end = measure_from + o.duration_ns;
  st.measure_from = measure_from;
  st.send_end = send_end;
  const auto expected = static_cast<std::size_t>(rate * static_cast<double>(send_end - t0) / 1e9 * 1.2) + 64;
  st.intended.reserve(expected);
  st.service.reserve(expected);
  st.done_at.reserve(expected);
  st.op.reserve(expected);
  loadgen::PointResult r;
  r.label = o.label;
  r.target_rps = rate;
  r.window_s = static_cast<double>(o.duration_ns) / 1e9;
  arrivals.start_at(t0);
  // Draw the whole schedule first: the slot vectors must not move while requests write them.
  for (std::uint64_t t = arrivals.next(rng); t < send_end; t = arrivals.next(rng)) {
    st.intended.push_back(t);
    const loadgen::Sample sample = o.request_mix().sample(rng);
    st.service.push_back(sample.service_ns);
    st.op.push_back(sample.op);
    st.done_at.push_back(kNotDone);
  }
  Releaser rel{st, submit, r};
  if (poller_rt != nullptr) {
    const int id = poller_rt->add_poller(&Releaser::poll, &rel);
    while (!rel.done.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    poller_rt->remove_poller(id);  // after it, nothing touches rel or r from the polling thread
  } else {
    while (rel.next < st.intended.size()) {
      wait_until_ns(st.intended[rel.next], o.gen_wait);
      rel.release_due(skyloft::now_ns());
    }
  }
  const std::uint64_t drain_end = send_end + o.drain_ns;
  while (st.finished.load(std::memory_order_acquire) < st.intended.size() && skyloft::now_ns() < drain_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const std::uint64_t end = skyloft::now_ns();
  st.cancel.store(true);
  while (st.finished.load(std::memory_order_acquire) < st.intended.size()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (inspect) inspect(st);
  for (std::size_t i = 0; i < st.intended.size(); ++i) {
    const std::uint64_t done = st.done_at[i];
    if (done != kNotDone && st.in_window(done)) ++r.completed_in_window;
    if (!st.in_window(st.intended[i])) continue;
    ++r.sent;
    std::uint64_t lat;
    if (done == kNotDone) {
      ++r.unanswered;
      lat = end - st.intended[i];
    } else {
      ++r.completed;
      // A worker's clock may read a little behind the generator's (the per-thread TSC mapping, clock.cpp):
      // never below zero.
      lat = done > st.intended[i] ? done - st.intended[i] : 0;
    }
    r.latency_ns.record(lat);
    r.slowdown_milli.record(lat * 1000 / st.service[i]);
  }
  return r;
}

int run_inprocess(const ServerOptions& o) {
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  std::ofstream csv;
  if (!o.csv.empty()) csv = bench::open_csv(o.csv, loadgen::csv_header());
  std::vector<loadgen::PointResult> points;
  auto generate = [&](const std::function<void(PointState*, std::size_t)>& submit, skyloft::Runtime* poller_rt) {
    for (double rate : o.rates) {
      fmt::print(stderr, "{}: {} {} rps ...\n", o.program, o.label, loadgen::format_rate(rate));
      points.push_back(run_point(o, rate, submit, {}, poller_rt));
      if (csv.is_open()) {
        csv << loadgen::csv_row(points.back());
        csv.flush();
      }
      if (o.stop_p99_ns && points.back().latency_ns.quantile(0.99) > *o.stop_p99_ns) break;
    }
  };
  // The generator is a thread of its own, so that its priority is not inherited by the server's threads.
  // With a poller, the runtime's polling thread releases the arrivals and this thread only waits.
  auto sweep = [&](const std::function<void(PointState*, std::size_t)>& submit, skyloft::Runtime* poller_rt) {
    std::thread([&] {
      if (o.gen_core >= 0) bench::pin_self(o.gen_core);
      const std::string e = loadgen::set_generator_slice(o.gen_slice_us);
      if (!e.empty()) fmt::print(stderr, "{}: {}; default slice\n", o.program, e);
      generate(submit, poller_rt);
    }).join();
  };
  const std::string generator_text =
      o.generator == Generator::poller
          ? std::string("the runtime's polling thread")
          : fmt::format("a thread{} that {}s", o.gen_core >= 0 ? fmt::format(" on core {}", o.gen_core) : std::string(),
                        o.gen_wait == GenWait::spin ? "spin" : "sleep");
  fmt::print("{}: in-process {} arrivals, mix {}, released by {}\n", o.program,
             loadgen::arrival_kind_name(o.arrival), o.request_mix().describe(), generator_text);
  if (o.mode == Mode::linux) {
    LinuxPool pool(o);
    fmt::print("  linux thread pool: {} threads{}{}\n", pool.size(), o.cores_text.empty() ? "" : " on cores " + o.cores_text,
               o.pool_slice_us != 0 ? fmt::format(", {} us slices", o.pool_slice_us) : std::string());
    sweep([&pool](PointState* s, std::size_t slot) { pool.submit(s, slot); }, nullptr);
  } else {
    try {
      skyloft::Runtime rt(o.config);
      fmt::print("  skyloft: policy {}, preempt {}, quantum {} us, {} workers on cores {}, idle spin {} us\n",
                 rt.policy_name(), o.config.preempt, o.config.quantum_us, rt.num_workers(),
                 skyloft::format_core_list(rt.worker_cores()), o.config.spin_us);
      sweep([](PointState* s, std::size_t slot) { skyloft::spawn([s, slot] { s->run(slot); }).detach(); },
            o.generator == Generator::poller ? &rt : nullptr);
      // Whether preemption happened at all is the first question when a preemptive configuration is slow.
      std::uint64_t checks = 0, preemptions = 0, steals = 0;
      for (const auto& w : rt.stats()) {
        checks += w.preempt_checks;
        preemptions += w.preemptions;
        steals += w.steals;
      }
      fmt::print("  skyloft: {} quantum expiries acted on, {} preemptions, {} steals over the sweep\n", checks,
                 preemptions, steals);
      rt.shutdown();
    } catch (const skyloft::ConfigError& e) {
      fmt::print(stderr, "{}: {}\n", o.program, e.what());
      return 2;
    }
  }
  loadgen::print_points(points);
  return 0;
}

}  // namespace skyloft::synthetic
