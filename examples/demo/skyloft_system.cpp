// skyloft_system.cpp - a skyloft system's run: one task per request, spawned by the generator thread.
#include <exception>
#include <memory>
#include <thread>

#include <fmt/core.h>

#include "global_fifo_policy.hpp"
#include "systems.hpp"

namespace demo {
namespace {

// Everything the generator thread and the tasks of one run touch. It lives on the heap so that a run that
// hangs can be abandoned (leaked with its runtime) while the demo goes on: a runtime with tasks stuck in it
// cannot be shut down.
struct SkyloftRun {
  SkyloftRun(const Plan& plan, const Calibration& cal)
      : w(&plan, &cal), wg(static_cast<u32>(w.recs.size())) {}
  Workload w;
  skyloft::WaitGroup wg;
  std::atomic<u32> submitted{0};       // written by the generator
  std::atomic<u32> spawn_failures{0};  // written by the generator
  std::string first_failure;           // written by the generator before spawn_failures' first increment
  GenResult g;
  std::thread gen;
};

std::string stats_line(const std::vector<skyloft::WorkerStats>& stats, bool preempting) {
  skyloft::WorkerStats t;
  for (const auto& s : stats) {
    t.switches += s.switches;
    t.steals += s.steals;
    t.parks += s.parks;
    t.idle_ns += s.idle_ns;
    t.preemptions += s.preemptions;
    t.preempt_deferred += s.preempt_deferred;
  }
  std::string line = fmt::format("switches {}, steals {}, parks {}, idle {:.0f} ms", t.switches, t.steals,
                                 t.parks, static_cast<double>(t.idle_ns) / 1e6);
  if (preempting) line += fmt::format(", preemptions {} (deferred {})", t.preemptions, t.preempt_deferred);
  return line;
}

}  // namespace

RunOutcome run_skyloft(const SystemSpec& s, const RunSettings& rs, const Plan& plan, const Calibration& cal,
                       bool verbose) {
  RunOutcome out;
  out.label = label_of(s, rs);
  skyloft_examples::register_global_fifo_policy();
  skyloft::Config cfg = rs.base;
  cfg.policy = s.policy;
  cfg.cores = skyloft::format_core_list(rs.cores);
  cfg.preempt = s.preempt;  // explicit, so that SKYLOFT_PREEMPT cannot make fifo preempt behind the label
  if (s.quantum) cfg.quantum_us = rs.quantum_us;

  std::unique_ptr<skyloft::Runtime> rt;
  try {
    rt = std::make_unique<skyloft::Runtime>(cfg);
  } catch (const std::exception& e) {
    out.status = fmt::format("skipped: {}", e.what());
    return out;
  }
  out.workers = std::to_string(rt->num_workers());
  if (rt->dispatcher_core() >= 0) out.workers += "+disp";

  auto run = std::make_unique<SkyloftRun>(plan, cal);
  SkyloftRun* r = run.get();
  r->w.preempt_points = s.preempt_points;
  const auto n = static_cast<u32>(r->w.recs.size());
  const double cpu0 = cpu_seconds();
  r->gen = std::thread([r, &rs] {
    r->g = generate(r->w, rs.cores, rs.gen, r->submitted, [r](u32 i) {
      try {
        skyloft::spawn([r, i] {
          r->w.execute(i);
          r->wg.done();
        }).detach();
      } catch (const std::exception& e) {
        if (r->spawn_failures.load(std::memory_order_relaxed) == 0) r->first_failure = e.what();
        r->spawn_failures.fetch_add(1, std::memory_order_relaxed);
        r->wg.done();  // counted as not completed (done == 0)
      }
    });
  });
  if (!wait_with_watchdog(
          rs, r->submitted, [r](std::chrono::milliseconds d) { return r->wg.wait_for(d); },
          [r] { return static_cast<std::size_t>(r->wg.count()); })) {
    const std::size_t left = r->wg.count();
    std::fflush(stdout);
    fmt::print(stderr, "\nskyloft_demo: HANG in '{}': {} of {} requests unfinished (generator submitted {})\n"
               "  repro: {}\n", out.label, left, n, r->submitted.load(), rs.repro);
    rt->dump(stderr);
    out.status = hang_status(rs, left, n) + "; runtime abandoned";
    out.hung = true;
    (void)rt.release();
    (void)run.release();
    return out;
  }
  out.cpu_s = cpu_seconds() - cpu0;
  r->gen.join();
  const std::vector<skyloft::WorkerStats> stats = rt->stats();
  const skyloft::ShutdownReport report = rt->shutdown();
  rt.reset();
  if (verbose) fmt::print("    {}: {}\n", out.label, stats_line(stats, s.preempt != std::string_view("none")));
  if (!report.clean()) fmt::print("    {}: shutdown report: {}\n", out.label, report.describe());
  if (r->spawn_failures.load() > 0) {
    out.status = fmt::format("{} spawn() calls failed; first: {}", r->spawn_failures.load(), r->first_failure);
  }
  out.gen = r->g;
  if (!out.gen.sched_error.empty() && out.status == "ok") out.status = "generator: " + out.gen.sched_error;
  out.work.emplace(std::move(r->w));
  return out;
}

}  // namespace demo
