// report.cpp - skyloft_preempt_cost's summaries and output: medians over runs, the aligned tables
// (bench_common's print_table), the column notes, the target lines and the CSV (bench_common's open_csv).
#include "report.hpp"

#include <cmath>
#include <exception>
#include <fstream>
#include <optional>

#include <fmt/core.h>
#include <fmt/format.h>

namespace preempt_cost {

Summary summarize(const std::vector<RunOut>& rs) {
  Summary s;
  std::vector<double> ev, pr, df, ov, lo, co, ra, sw, a1, a2, b1, b2, c1, c2, d1, e1, e2, f1;
  for (const auto& r : rs) {
    if (!r.ok) continue;
    ++s.runs;
    if (r.livelock) ++s.livelocks;
    if (disturbed(r)) ++s.disturbed;
    double sec = r.window_ns / 1e9;
    ev.push_back(static_cast<double>(r.events) / sec);
    pr.push_back(static_cast<double>(r.preemptions) / sec);
    df.push_back(static_cast<double>(r.deferred) / sec);
    ov.push_back(static_cast<double>(r.overruns) / sec);
    sw.push_back(static_cast<double>(r.switches_seen) / sec);
    lo.push_back(r.lost * 100);
    co.push_back(r.cost_us);
    ra.push_back(r.rate);
    a1.push_back(r.stop.p50);
    b1.push_back(r.handler.p50);
    b2.push_back(r.handler.p99);
    c1.push_back(r.run.p50);
    c2.push_back(r.run.p99);
    d1.push_back(r.gap.p50);
    a2.push_back(r.gap.p99);
    e1.push_back(r.slice.p50);
    e2.push_back(r.slice.p99);
    f1.push_back(r.sys.p50);
  }
  if (s.runs == 0) return s;
  s.ok = true;
  s.events_s = median(ev);
  s.preempt_s = median(pr);
  s.deferred_s = median(df);
  s.overrun_s = median(ov);
  s.switches_s = median(sw);
  s.lost_pct = median(lo);
  const skyloft::bench::Spread cost = skyloft::bench::spread(co);
  s.cost_us = cost.median;
  s.cost_min = cost.min;
  s.cost_max = cost.max;
  s.rate = median(ra);
  {
    std::vector<double> g, w;
    for (const auto& r : rs) {
      if (!r.ok) continue;
      if (!std::isnan(r.gap_cost_us)) g.push_back(r.gap_cost_us);
      w.push_back(100.0 * r.wait_ns / r.window_ns);
    }
    const skyloft::bench::Spread gap = skyloft::bench::spread(g);
    s.gap_cost = gap.median;
    s.gap_min = gap.min;
    s.gap_max = gap.max;
    s.wait_pct = median(w);
  }
  s.stop.p50 = median(a1);
  s.handler = {median(b1), median(b2)};
  s.run = {median(c1), median(c2)};
  s.gap = {median(d1), median(a2)};
  s.slice = {median(e1), median(e2)};
  s.sys.p50 = median(f1);
  return s;
}

namespace {

// ---------------------------------------------------------------------------------------------------------
// Output helpers

std::string num(double v, int prec = 1) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.{}f}", v, prec);
}

std::string us_cell(double v) {
  if (std::isnan(v)) return "-";
  if (std::fabs(v) >= 100) return fmt::format("{:.0f}", v);
  if (std::fabs(v) >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

std::string pair_cell(const Pcts& p) {
  if (std::isnan(p.p50)) return "-";
  return fmt::format("{}/{}", us_cell(p.p50), us_cell(p.p99));
}

std::string rate_cell(double v) {
  if (std::isnan(v)) return "-";
  if (v >= 10000) return fmt::format("{:.1f}k", v / 1000);
  return fmt::format("{:.0f}", v);
}

std::string cost_cell(const Summary& s) {
  if (std::isnan(s.cost_us)) return "-";
  return fmt::format("{} [{}..{}]", us_cell(s.cost_us), us_cell(s.cost_min), us_cell(s.cost_max));
}

}  // namespace

double print_baselines(const std::vector<Cell>& cells) {
  fmt::print("\nBaselines (no events; median over all runs and quanta, iterations per ns):\n");
  auto all_rates = [&](const std::string& key) {
    std::vector<double> v;
    for (auto& c : cells)
      if (c.key == key)
        for (auto& [q, rs] : c.runs)
          for (auto& o : rs)
            if (o.ok) v.push_back(o.rate);
    return v;
  };
  double preempt_point_ns = kNaN;
  {
    std::vector<std::vector<std::string>> rows;
    for (const char* key : {"base_thread", "base_sky", "base_sky_pp"}) {
      auto v = all_rates(key);
      if (v.empty()) continue;
      const skyloft::bench::Spread sp = skyloft::bench::spread(v);
      double med = sp.median, lo = sp.min, hi = sp.max;
      std::string label;
      for (auto& c : cells)
        if (c.key == key) label = c.label;
      rows.push_back({label, fmt::format("{:.3f}", med), fmt::format("{:.3f}..{:.3f}", lo, hi),
                      fmt::format("{:.2f}", (hi - lo) / med * 100), fmt::format("{:.3f}", 1.0 / med)});
    }
    print_table({"loop", "iter/ns", "min..max", "spread %", "ns/iter"}, rows, 1);
    auto a = all_rates("base_sky"), b = all_rates("base_sky_pp");
    if (!a.empty() && !b.empty()) preempt_point_ns = 1.0 / median(b) - 1.0 / median(a);
    fmt::print("preempt_point() (not requested) costs {} ns per call (difference of the two skyloft loops per "
               "iteration)\n",
               num(preempt_point_ns, 3));
    fmt::print("The baseline spread bounds the resolution of 'lost %': at Q=100 us a cost of 1 us per event is 1 %.\n");
  }
  return preempt_point_ns;
}

void print_quantum_tables(const std::vector<Cell>& cells, Summaries& sum) {
  std::vector<std::string> head = {"mechanism", "ticker", "events/s", "preempt/s", "lost %",
                                   "us/ev tput [min..max]", "us/ev gaps [min..max]", "stop p50",
                                   "handler p50/p99", "run p50/p99", "gap p50/p99", "slice p50/p99", "notes"};
  for (int q : g_opt.quanta) {
    fmt::print("\nQuantum {} us (1/Q = {} events/s)  [latency columns in us]\n", q, rate_cell(1e6 / q));
    std::vector<std::vector<std::string>> rows;
    for (auto& c : cells) {
      if (c.is_baseline || !selected(c)) continue;
      const Summary& s = sum[c.key][q];
      if (!s.ok) {
        rows.push_back({c.label, c.ticker, "FAILED", "", "", "", "", "", "", "", "", "", ""});
        continue;
      }
      bool sky = c.key.rfind("sky_", 0) == 0;
      std::string ev = rate_cell(s.events_s);
      if (c.key == "bare_timer" && s.overrun_s > 0) ev += fmt::format(" (+{} ovr)", rate_cell(s.overrun_s));
      if (sky && s.deferred_s > 0) ev += fmt::format(" ({} def)", rate_cell(s.deferred_s));
      std::vector<std::string> notes;
      if (s.livelocks) notes.push_back(fmt::format("LIVELOCK {}/{}", s.livelocks, s.runs));
      if (s.disturbed) notes.push_back(fmt::format("disturbed {}/{}", s.disturbed, s.runs));
      std::string gap_cost = std::isnan(s.gap_cost) ? "-"
                             : fmt::format("{} [{}..{}]", us_cell(s.gap_cost), us_cell(s.gap_min), us_cell(s.gap_max));
      rows.push_back({c.label, c.ticker, ev, sky ? rate_cell(s.preempt_s) : "-", num(s.lost_pct, 2), cost_cell(s),
                      gap_cost, us_cell(s.stop.p50), pair_cell(s.handler), pair_cell(s.run), sky ? pair_cell(s.gap) : "-",
                      pair_cell(s.slice), fmt::format("{}", fmt::join(notes, ", "))});
    }
    print_table(head, rows, 2);
  }
}

void print_columns(int retried) {
  fmt::print(
      "\nColumns: events/s = handler calls (bare) or preempt_checks+preempt_deferred (skyloft; 'def' = deferred);\n"
      "  preempt/s = preemptions (the policy's tick said yes); lost % = loop throughput lost vs the baseline of the\n"
      "  same run and quantum; us/ev tput = lost x T / events (median [min..max] over runs). That throughput\n"
      "  method is exact on a quiet machine but on this VM the loop's speed also moves with load on the other vCPU\n"
      "  (shared physical core / host), so a second, load-robust estimate is given: us/ev gaps = time the loop\n"
      "  lost in chunks that took > {}x the normal chunk ({} ns), minus the time the thread waited for its core\n"
      "  (schedstat: other threads ran), minus the same-block baseline's gap time per ns, divided by events. It\n"
      "  misses costs that only slow the loop down (cache refill after an interrupt) without a visible gap.\n"
      "  Latencies are measured from the trigger: the ideal expiry (bare timer), the sender's rdtsc before tgkill\n"
      "  (bare cross-core), or the quantum expiry = the preempted task's first timestamp in its slice + Q\n"
      "  (skyloft ticker rows). stop = the victim's last loop progress; handler = handler entry (bare only: the\n"
      "  runtime's handler cannot be instrumented); run = user code runs again (bare: the same loop after\n"
      "  sigreturn; skyloft: the other task). gap = core time between the two tasks' loops (skyloft);\n"
      "  slice = observed run length of a task between switches. '+pp' loops call skyloft::preempt_point() every\n"
      "  iteration (flag/hybrid need it); 'no pp' hybrid falls back to a signal after hybrid_grace_us.\n"
      "  Each cell is a separate Runtime; the bare rows run in plain pthreads with no runtime alive.\n"
      "  LIVELOCK k/n: in k of n runs the signal storm never let the loop reach its deadline (the interval is\n"
      "  shorter than the interrupt's service time); a guard stopped it {} ms after the deadline (bare: disarmed\n"
      "  the timer; skyloft: made SIGURG ignored until the cell ended). Such runs have no cost per event.\n"
      "  disturbed k/n: in k runs (after up to {} retries each) the busy thread waited > 2% of the run for its\n"
      "  core (schedstat) or, for rows that also use the other core (cross-core sender, ticker), other\n"
      "  processes used > {}% of the machine.\n",
      kGapFactor, num(static_cast<double>(g_chunk_ticks) / g_ticks_per_ns, 0), kGuardMs, g_opt.retries, g_opt.max_other);
  fmt::print("Runs re-run because other processes disturbed them: {}\n", retried);
}

void print_targets(Summaries& sum) {
  fmt::print("\nTargets (printed, not asserted):\n");
  auto met = [](std::optional<bool> b) { return !b ? std::string("?") : *b ? std::string("met") : std::string("NOT met"); };
  for (int q : g_opt.quanta) {
    const Summary& st = sum["sky_timer"][q];
    const Summary& bt = sum["bare_timer"][q];
    std::optional<bool> ok;
    if (!std::isnan(st.gap_cost) && !std::isnan(bt.gap_cost)) ok = st.gap_cost - bt.gap_cost <= 1.0;
    fmt::print("  [T1] Q={:>3} us  runtime adds <= 1 us per preemption over the bare timer signal (gaps): skyloft timer {} - "
               "bare timer {} = {} us -> {}  (throughput method: {} - {} us)\n",
               q, us_cell(st.gap_cost), us_cell(bt.gap_cost),
               (std::isnan(st.gap_cost) || std::isnan(bt.gap_cost)) ? "-" : us_cell(st.gap_cost - bt.gap_cost), met(ok),
               us_cell(st.cost_us), us_cell(bt.cost_us));
  }
  for (int q : g_opt.quanta) {
    const Summary& bx = sum["bare_tgkill_cross"][q];
    for (const char* key : {"sky_dispatcher_pinned", "sky_dispatcher_float"}) {
      if (!sum.count(key)) continue;
      const Summary& d = sum[key][q];
      if (!d.ok || !bx.ok) {
        fmt::print("  [T2] Q={:>3} us  {}: ?\n", q, key);
        continue;
      }
      double lim = 1.2 * bx.handler.p50;
      std::string verdict = d.run.p50 <= lim   ? "met (even the upper bound 'run' is within)"
                            : d.stop.p50 > lim ? "NOT met (even the lower bound 'stop' exceeds it)"
                                               : "inconclusive (bound [stop, run] straddles the limit)";
      fmt::print("  [T2] Q={:>3} us  dispatcher ({}) send-to-handler <= 1.2x bare cross-core tgkill (p50 {} us, limit"
                 " {} us): bracket [stop {}, run {}] us -> {}; like for like, run {} vs bare run {} us = {}x\n",
                 q, key == std::string("sky_dispatcher_pinned") ? "pinned" : "float", us_cell(bx.handler.p50),
                 us_cell(lim), us_cell(d.stop.p50), us_cell(d.run.p50), verdict, us_cell(d.run.p50),
                 us_cell(bx.run.p50), num(d.run.p50 / bx.run.p50, 2));
    }
  }
  for (int q : g_opt.quanta) {
    for (const char* key : {"sky_flag_pp_pinned", "sky_flag_pp_float"}) {
      if (!sum.count(key)) continue;
      const Summary& f = sum[key][q];
      std::optional<bool> ok;
      if (!std::isnan(f.gap_cost)) ok = f.gap_cost <= 0.1;
      fmt::print("  [T3] Q={:>3} us  flag ({}) preemption <= 100 ns per event (gaps): {} ns [{}..{}] -> {}  (throughput "
                 "method: {} ns)\n",
                 q, key == std::string("sky_flag_pp_pinned") ? "pinned" : "float", num(f.gap_cost * 1000, 0),
                 num(f.gap_min * 1000, 0), num(f.gap_max * 1000, 0), met(ok), num(f.cost_us * 1000, 0));
    }
  }
}

bool write_csv(const std::vector<Cell>& cells, Summaries& sum, double preempt_point_ns) {
  try {
    std::ofstream out = open_csv(g_opt.csv,
        "key,mechanism,ticker,quantum_us,runs,events_per_s,preemptions_per_s,deferred_per_s,overruns_per_s,"
           "lost_pct,cost_us,cost_min_us,cost_max_us,rate_iter_per_ns,stop_p50_us,handler_p50_us,handler_p99_us,"
           "run_p50_us,run_p99_us,gap_p50_us,gap_p99_us,slice_p50_us,slice_p99_us,sender_syscall_p50_us,"
           "preempt_point_ns,gap_cost_us,gap_cost_min_us,gap_cost_max_us,busy_wait_pct,livelocked_runs,disturbed_runs\n");
    auto f = [](double v) { return std::isnan(v) ? std::string() : fmt::format("{:.4f}", v); };
    for (auto& c : cells) {
      for (auto& [q, rs] : c.runs) {
        const Summary& s = sum[c.key][q];
        if (!s.ok) continue;
        out << fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", c.key,
                           c.label, c.ticker, q, s.runs, f(s.events_s), f(s.preempt_s), f(s.deferred_s),
                           f(s.overrun_s), f(s.lost_pct), f(s.cost_us), f(s.cost_min), f(s.cost_max), f(s.rate),
                           f(s.stop.p50), f(s.handler.p50), f(s.handler.p99), f(s.run.p50), f(s.run.p99),
                           f(s.gap.p50), f(s.gap.p99), f(s.slice.p50), f(s.slice.p99), f(s.sys.p50),
                           f(preempt_point_ns), f(s.gap_cost), f(s.gap_min), f(s.gap_max), f(s.wait_pct),
                           s.livelocks, s.disturbed);
      }
    }
    fmt::print("CSV: {}\n", g_opt.csv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "skyloft_preempt_cost: writing CSV failed: {}\n", e.what());
    return false;
  }
  return true;
}

}  // namespace preempt_cost
