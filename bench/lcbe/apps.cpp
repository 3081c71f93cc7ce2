// apps.cpp - the LC app (one load point: the generator loop, the BE counters sampled between submits, the
// acquisition samples; the sweep on its own generator thread) and the BE app, on skyloft or on Linux.
#include "apps.hpp"

#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "realtime.hpp"
#include "skyloft/skyloft.hpp"

namespace lcbe {

namespace {

// ---- the LC child ----

// One load point: the generator loop (this thread), with the BE counters sampled between submits and the
// acquisition samples taken from the finished slots.
PointOut measure_point(const syn::ServerOptions& o, double load, double rate, int ncores, Shared* sh,
                       const std::function<void(syn::PointState*, std::size_t)>& serve) {
  std::vector<std::uint64_t> submitted;
  std::vector<std::uint8_t> idle;  // nothing in flight when it was submitted
  struct BeSample {
    std::uint64_t t, units;
  };
  std::vector<BeSample> be;
  be.reserve(4096);
  auto submit = [&](syn::PointState* s, std::size_t slot) {
    if (slot == 0) {  // the whole schedule is drawn before the first submit
      submitted.assign(s->intended.size(), 0);
      idle.assign(s->intended.size(), 0);
    }
    const std::uint64_t t = skyloft::now_ns();
    submitted[slot] = t;
    idle[slot] = s->finished.load(std::memory_order_acquire) == slot;
    if (be.empty() || t - be.back().t >= kBeSampleNs) be.push_back({t, be_units_sum(sh)});
    serve(s, slot);
  };
  std::vector<double> acq;
  double be_rate = NAN;
  auto inspect = [&](const syn::PointState& s) {
    for (std::size_t i = 0; i < s.intended.size(); ++i) {
      if (!idle[i] || s.service[i] >= kShortServiceNs || s.done_at[i] == syn::kNotDone) continue;
      if (s.intended[i] < s.measure_from || s.intended[i] >= s.send_end) continue;
      const std::uint64_t start = s.done_at[i] - std::min(s.done_at[i], s.service[i]);
      acq.push_back(start > submitted[i] ? static_cast<double>(start - submitted[i]) / 1000.0 : 0.0);
    }
    const BeSample* a = nullptr;
    const BeSample* b = nullptr;
    for (const BeSample& x : be) {
      if (x.t >= s.measure_from && a == nullptr) a = &x;
      if (x.t <= s.send_end) b = &x;
    }
    if (a != nullptr && b != nullptr && b->t > a->t) {
      be_rate = static_cast<double>(b->units - a->units) * 1e9 / static_cast<double>(b->t - a->t);
    }
  };
  const auto threads_before = bench::thread_snap();
  const std::uint64_t t0 = skyloft::now_ns();
  skyloft::loadgen::PointResult r = syn::run_point(o, rate, submit, inspect);
  const bench::RoleUse use =
      bench::role_use(threads_before, bench::thread_snap(), static_cast<double>(skyloft::now_ns() - t0) / 1e9, ncores);
  PointOut p;
  for (int k = 0; k < bench::kRoles; ++k) p.lc_cpu_pct[k] = use.cpu_pct[k];
  p.load = load;
  p.rate = rate;
  p.achieved = r.achieved_rps();
  p.sent = r.sent;
  p.completed = r.completed;
  p.unanswered = r.unanswered;
  p.p50_us = static_cast<double>(r.latency_ns.quantile(0.50)) / 1000.0;
  p.p99_us = static_cast<double>(r.latency_ns.quantile(0.99)) / 1000.0;
  p.p999_us = static_cast<double>(r.latency_ns.quantile(0.999)) / 1000.0;
  p.lag_p99_us = static_cast<double>(r.send_lag_ns.quantile(0.99)) / 1000.0;
  p.be_units_per_s = be_rate;
  std::sort(acq.begin(), acq.end());
  p.acq_n = acq.size();
  if (!acq.empty()) {
    p.acq_p50_us = bench::nearest_rank(acq, 0.50);
    p.acq_p99_us = bench::nearest_rank(acq, 0.99);
    p.acq_max_us = acq.back();
  }
  return p;
}

// The sweep on its own generator thread (its short slice must not be inherited by the server's threads).
void sweep(const Plan& plan, int run, Shared* sh, const std::function<void(syn::PointState*, std::size_t)>& serve) {
  std::thread([&] {
    (void)skyloft::loadgen::set_generator_slice(kGeneratorSliceUs);  // an older kernel: the default slice
    const syn::ServerOptions o = point_options(plan, run);
    for (double load : plan.loads) {
      const std::uint32_t k = sh->npoints.load();
      sh->points[k] = measure_point(o, load, load * plan.capacity_rps, static_cast<int>(plan.cores.size()), sh, serve);
      sh->npoints.store(k + 1);
    }
  }).join();
}

// The Config of an app that joins the daemon at `socket` as `app_class` ("lc" or "be").
skyloft::Config daemon_app(const std::string& socket, const char* app_class, const char* app_name) {
  skyloft::Config cfg;
  cfg.daemon = socket;
  cfg.app_class = app_class;
  cfg.app_name = app_name;
  return cfg;
}

}  // namespace

int lc_child(const Plan& plan, int run, Series s, Shared* sh, const std::string& socket) {
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  try {
    if (on_skyloft(s)) {
      skyloft::Config cfg = daemon_app(socket, "lc", "lcbe-lc");
      cfg.policy = "rr";
      cfg.preempt = "flag";
      cfg.quantum_us = 30;
      skyloft::Runtime rt(cfg);
      sweep(plan, run, sh, [](syn::PointState* st, std::size_t slot) { skyloft::spawn([st, slot] { st->run(slot); }).detach(); });
      rt.shutdown();
    } else {
      syn::LinuxPool pool(point_options(plan, run));
      sweep(plan, run, sh, [&pool](syn::PointState* st, std::size_t slot) { pool.submit(st, slot); });
    }
  } catch (const std::exception& e) {
    set_error(sh, fmt::format("LC app: {}", e.what()));
    return 1;
  }
  return 0;
}

// ---- the BE child ----

int be_child(const Plan& plan, Series s, Shared* sh, const std::string& socket) {
  const int n = static_cast<int>(plan.cores.size());
  try {
    if (on_skyloft(s)) {
      skyloft::Runtime rt(daemon_app(socket, "be", "lcbe-be"));
      std::vector<skyloft::JoinHandle> tasks;
      for (int i = 0; i < static_cast<int>(rt.num_workers()) && i < kMaxCores; ++i) {
        tasks.push_back(skyloft::spawn([sh, i] { be_loop(sh, i); }));
      }
      sh->be_ready.store(1);
      for (auto& t : tasks) t.join();
      rt.shutdown();
    } else {
      std::vector<std::thread> threads;
      std::atomic<int> failed{0};
      for (int i = 0; i < n && i < kMaxCores; ++i) {
        threads.emplace_back([&, i] {
          int rc;
          if (s == Series::nice19) {
            rc = setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
          } else {
            sched_param sp{};
            rc = sched_setscheduler(0, SCHED_IDLE, &sp);  // this thread only (Linux: per thread)
          }
          if (rc != 0) failed.store(errno);
          be_loop(sh, i);
        });
      }
      while (be_units_sum(sh) == 0 && sh->be_stop.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (failed.load() != 0) {
        set_error(sh, fmt::format("BE app: cannot set {}: {}", series_name(s), std::strerror(failed.load())));
        sh->be_stop.store(1);
      }
      sh->be_ready.store(1);
      for (auto& t : threads) t.join();
      if (sh->error[0] != '\0') return 1;
    }
  } catch (const std::exception& e) {
    set_error(sh, fmt::format("BE app: {}", e.what()));
    sh->be_ready.store(1);
    return 1;
  }
  return 0;
}

}  // namespace lcbe
