// test_policies.cpp - behaviour specific to the per-CPU policies rr, cfs and eevdf (the conformance suite
// covers what every policy must do). Two kinds of tests:
//  * through a Runtime, with cooperative yields (weighted CPU shares, round-robin order, pinning);
//  * on a policy object alone, driven op by op with a fake host and fake tasks, to check the preemption
//    decision tick() against real elapsed time (no preemption mechanism needed).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "skyloft/policy.hpp"
#include "skyloft/preempt.hpp"
#include "skyloft/skyloft.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using namespace skytest;
using skyloft::JoinHandle;
using skyloft::now_ns;
using skyloft::Runtime;
using skyloft::SpawnOptions;
namespace this_task = skyloft::this_task;

void spin_ns(std::uint64_t ns) {
  const std::uint64_t t0 = now_ns();
  while (now_ns() - t0 < ns) {
  }
}

// ---- policy objects driven directly ----

class FakeHost final : public skyloft::PolicyHost {
 public:
  explicit FakeHost(int workers)
      : idle(static_cast<std::size_t>(workers)), parked(static_cast<std::size_t>(workers)),
        stalled(static_cast<std::size_t>(workers)), workers_(workers) {}
  int num_workers() const noexcept override { return workers_; }
  int core_of(int worker) const noexcept override { return worker; }
  void kick(int) noexcept override {}
  void notify_work_available() noexcept override {}
  bool is_idle(int w) const noexcept override { return idle[static_cast<std::size_t>(w)]; }
  bool is_parked(int w) const noexcept override { return parked[static_cast<std::size_t>(w)]; }
  bool is_stalled(int w) const noexcept override { return stalled[static_cast<std::size_t>(w)]; }
  void kick_dispatcher() noexcept override {}
  void task_waiting(int) noexcept override { ++waiting; }
  int waiting = 0;
  std::vector<bool> idle, parked, stalled;  // what the test says each worker is doing (default: running a task)

 private:
  int workers_;
};

// The policies only touch a task's SchedInfo (its first member), so a bare SchedInfo stands in for a task.
struct FakeTask {
  skyloft::SchedInfo info;
  skyloft::Task* task() { return reinterpret_cast<skyloft::Task*>(&info); }
};

struct Driven {
  FakeHost host{1};
  std::unique_ptr<skyloft::Policy> policy;
  std::vector<std::unique_ptr<FakeTask>> tasks;

  Driven(const std::string& name, std::vector<std::pair<std::string, std::string>> params, std::size_t n) {
    policy = skyloft::make_policy(name);
    policy->init(host);
    for (auto& [k, v] : params) EXPECT_TRUE(policy->set_param(k, v)) << k << "=" << v;
    policy->init_worker(0);
    for (std::size_t i = 0; i < n; ++i) {
      tasks.push_back(std::make_unique<FakeTask>());
      tasks.back()->info.id = i + 1;
      policy->task_init(tasks.back()->task());
      policy->spawn(tasks.back()->task(), 0, -1);
    }
  }
  ~Driven() {
    // Drain, so the policy owns nothing when it is destroyed.
    while (skyloft::Task* t = policy->pick_next(0)) policy->task_finish(t, 0);
  }

  struct Run {
    skyloft::Task* task;
    std::uint64_t ns;   // from just before the pick until tick() said preempt
    int steps;          // 10 us steps it ran
  };
  // Picks a task and runs it in 10 us steps, asking tick() after each, until tick() says preempt (or
  // `limit` passes); then yields it.
  Run run_one(std::uint64_t limit_ns) {
    // t0 before the pick: the policy starts its accounting inside pick_next, so the measured run is never
    // shorter than the accounted one, even when this thread loses its core in between (a shared VM).
    const std::uint64_t t0 = now_ns();
    skyloft::Task* t = policy->pick_next(0);
    EXPECT_NE(t, nullptr);
    int steps = 0;
    bool preempt = false;
    while (!preempt && now_ns() - t0 < limit_ns) {
      spin_ns(10'000);
      ++steps;
      preempt = policy->tick(0, t);
    }
    Run r{t, now_ns() - t0, steps};
    policy->yield(t, 0);
    return r;
  }
};

TEST(PolicyParams, UnknownKeysAndBadValuesAreRejected) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> keys = {
      {"rr", {"slice_us"}}, {"cfs", {"latency_us", "min_granularity_us"}}, {"eevdf", {"slice_us"}}};
  for (const auto& [name, params] : keys) {
    auto p = skyloft::make_policy(name);
    EXPECT_EQ(p->name(), name);
    EXPECT_FALSE(p->set_param("no_such_key", "100")) << name;
    EXPECT_FALSE(p->set_param("", "100")) << name;
    for (const auto& k : params) {
      EXPECT_TRUE(p->set_param(k, "250")) << name << " " << k;
      for (const char* bad : {"", "abc", "-5", "12x", " 12", "1.5", "99999999999", "18446744073709551617"}) {
        EXPECT_FALSE(p->set_param(k, bad)) << name << " " << k << "='" << bad << "'";
      }
    }
  }
  EXPECT_TRUE(skyloft::make_policy("rr")->set_param("slice_us", "0")) << "rr slice 0: the mechanism's quantum";
  EXPECT_FALSE(skyloft::make_policy("eevdf")->set_param("slice_us", "0"));
  EXPECT_FALSE(skyloft::make_policy("cfs")->set_param("latency_us", "0"));
  EXPECT_FALSE(skyloft::make_policy("sq")->set_param("slice_us", "100"));
}

TEST(PolicyParams, RuntimeTurnsRejectionIntoConfigError) {
  Watchdog wd;
  Runtime rt(make_config("eevdf"));
  EXPECT_NO_THROW(rt.set_policy_param("slice_us", "200"));
  EXPECT_CONFIG_ERROR(rt.set_policy_param("slice_us", "fast"), "slice_us");
  EXPECT_CONFIG_ERROR(rt.set_policy_param("latency_us", "100"), "latency_us");
}

TEST(PolicyParams, ConfigAppliesThemAtStartAndRejectsBadOnes) {
  Watchdog wd;
  skyloft::Config c = make_config("rr");
  c.policy_params = "slice_us=250,wake_first=1";
  EXPECT_NO_THROW(Runtime rt(c));
  c.policy_params = "slice_us=250,bogus=1";
  EXPECT_CONFIG_ERROR(Runtime rt(c), "policy 'rr' rejected parameter bogus=1");
  c.policy_params = "slice_us";
  EXPECT_CONFIG_ERROR(Runtime rt(c), "'slice_us' is not key=value");
  c.policy_params = "slice_us=250,";
  EXPECT_CONFIG_ERROR(Runtime rt(c), "'' is not key=value");
  c.policy_params = "=5";
  EXPECT_CONFIG_ERROR(Runtime rt(c), "'=5' is not key=value");
}

TEST(PolicyTick, RrPreemptsAfterItsSlice) {
  {
    Driven d("rr", {{"slice_us", "300"}}, 3);
    for (int i = 0; i < 6; ++i) {
      auto r = d.run_one(100'000'000);
      EXPECT_GE(r.ns, 300'000u - 10'000) << "run " << i << " preempted before its slice";
      EXPECT_EQ(r.task, d.tasks[static_cast<std::size_t>(i % 3)]->task()) << "run " << i << " out of turn";
    }
    EXPECT_GT(d.host.waiting, 0) << "queueing never announced a waiting task (tickless preemption hook)";
  }
  Driven d0("rr", {}, 2);  // slice 0: every tick preempts
  EXPECT_EQ(d0.run_one(100'000'000).steps, 1);
}

// wake_first: a woken task goes ahead of the queued ones (FIFO among wakees) and makes the next tick preempt
// the running task, whatever its slice; a task that yields or is preempted goes to the tail as before.
TEST(PolicyTick, RrWakeFirstPutsWakeesAheadAndPreemptsAtTheNextTick) {
  for (const bool wake_first : {false, true}) {
    SCOPED_TRACE(wake_first ? "wake_first=1" : "wake_first=0");
    Driven d("rr", {{"slice_us", "1000000"}, {"wake_first", wake_first ? "1" : "0"}}, 4);
    skyloft::Policy& p = *d.policy;
    skyloft::Task* a = d.tasks[0]->task();
    skyloft::Task* b = d.tasks[1]->task();
    skyloft::Task* c = d.tasks[2]->task();
    skyloft::Task* w = d.tasks[3]->task();
    // Spawned a, b, c, w: run a, b and c once each (back to the tail), then let w block.
    for (skyloft::Task* expected : {a, b, c}) {
      ASSERT_EQ(p.pick_next(0), expected);
      p.yield(expected, 0);
    }
    ASSERT_EQ(p.pick_next(0), w);
    p.block(w, 0);  // queue: a, b, c
    ASSERT_EQ(p.pick_next(0), a);
    EXPECT_FALSE(p.tick(0, a)) << "a 1 s slice: no preemption yet";
    p.wakeup(w, 0);
    EXPECT_EQ(p.tick(0, a), wake_first) << "a wakee waiting at the front preempts at the next tick";
    p.yield(a, 0);
    skyloft::Task* next = p.pick_next(0);
    EXPECT_EQ(next, wake_first ? w : b);
    EXPECT_FALSE(p.tick(0, next)) << "no wakee waits any more";
    p.yield(next, 0);
  }
  EXPECT_FALSE(skyloft::make_policy("rr")->set_param("wake_first", "yes"));
  EXPECT_FALSE(skyloft::make_policy("rr")->set_param("wake_first", "2"));
}

TEST(PolicyTick, CfsPreemptsAfterItsShareOfTheLatency) {
  // Two nice-0 tasks, latency 2 ms, granularity 100 us: slice = max(100 us, 2 ms * 1024 / 2048) = 1 ms.
  Driven d("cfs", {{"latency_us", "2000"}, {"min_granularity_us", "100"}}, 2);
  for (int i = 0; i < 6; ++i) {
    auto r = d.run_one(100'000'000);
    EXPECT_GE(r.ns, 1'000'000u - 10'000) << "run " << i << " preempted before its slice";
    EXPECT_EQ(r.task, d.tasks[static_cast<std::size_t>(i % 2)]->task()) << "run " << i;
  }
}

TEST(PolicyTick, EevdfHonoursItsSlice) {
  // Three nice-0 tasks with a 300 us request each. A task runs in 10 us steps and asks tick() after every
  // step: it must not be preempted before it has used its request (a new task's first request is half a
  // slice, as in Linux), and then the one with the earliest deadline runs, so they rotate.
  const std::uint64_t slice = 300'000;
  Driven d("eevdf", {{"slice_us", "300"}}, 3);
  std::map<skyloft::Task*, int> runs;
  skyloft::Task* prev = nullptr;
  for (int i = 0; i < 12; ++i) {
    auto r = d.run_one(100'000'000);
    // Less 10 us: a request is renewed at the tick that ends a run, so it also pays for the few
    // microseconds from there to the switch (more under TSan).
    const std::uint64_t need = (i < 3 ? slice / 2 : slice) - 10'000;
    EXPECT_GE(r.ns, need) << "run " << i << " preempted before its request was used";
    EXPECT_GE(r.steps, 1);
    EXPECT_NE(r.task, prev) << "run " << i << ": preempted, yet picked again while others were eligible";
    prev = r.task;
    ++runs[r.task];
  }
  for (std::size_t i = 0; i < d.tasks.size(); ++i) EXPECT_GE(runs[d.tasks[i]->task()], 1) << "task " << i;
}

TEST(PolicyTick, EevdfAloneIsNeverPreempted) {
  Driven d("eevdf", {{"slice_us", "100"}}, 1);
  auto r = d.run_one(1'000'000);  // ten slices
  EXPECT_GE(r.ns, 1'000'000u) << "tick() preempted the only task";
}

// ---- through a runtime, with cooperative yields ----

// Runs body(i, end) as one task per nice value (task i with nices[i]) until `end` = now + total_ns; joins all.
template <class Body>
void run_per_nice(Runtime& rt, const std::vector<int>& nices, std::uint64_t total_ns, Body body) {
  rt.block_on([&] {
    const std::uint64_t end = now_ns() + total_ns;
    std::vector<JoinHandle> hs;
    for (std::size_t i = 0; i < nices.size(); ++i) {
      SpawnOptions o;
      o.nice = nices[i];
      hs.push_back(skyloft::spawn([&body, i, end] { body(i, end); }, o));
    }
    for (auto& h : hs) h.join();
  });
}

// On one worker, tasks of the given nice values spin in `chunk` pieces with a yield after each, for
// `total`; returns each task's CPU time (the sum of its own busy intervals).
std::vector<double> cpu_shares(const std::string& policy, const std::vector<int>& nices, std::uint64_t chunk_ns,
                               std::uint64_t total_ns) {
  auto rt = make_single_worker_runtime(policy);
  EXPECT_NE(rt, nullptr);
  if (!rt) return {};
  std::vector<std::uint64_t> busy(nices.size(), 0);
  run_per_nice(*rt, nices, total_ns, [&busy, chunk_ns](std::size_t i, std::uint64_t end) {
    for (std::uint64_t t0 = now_ns(); t0 < end; t0 = now_ns()) {
      spin_ns(chunk_ns);
      busy[i] += now_ns() - t0;
      this_task::yield();
    }
  });
  double sum = 0;
  for (auto b : busy) sum += static_cast<double>(b);
  std::vector<double> shares;
  for (auto b : busy) shares.push_back(static_cast<double>(b) / sum);
  return shares;
}

// Shares are measured in wall time, as the policies account it: when the kernel takes the worker's core
// from a task near the end of the run, that task is charged and cannot be paid back before the end. On a
// loaded machine one run in a few can miss by more than 10% for that reason alone, so this takes the best
// of three runs (a policy that gets weights wrong misses in all of them).
void expect_weighted_shares(const std::string& policy) {
  const std::vector<int> nices = {0, 5, -5};
  const std::vector<double> weights = {1024, 335, 3121};
  const double wsum = weights[0] + weights[1] + weights[2];
  std::string report;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto shares = cpu_shares(policy, nices, 20'000, 300'000'000);
    ASSERT_EQ(shares.size(), nices.size());
    bool ok = true;
    report += "\n  attempt " + std::to_string(attempt) + ":";
    for (std::size_t i = 0; i < nices.size(); ++i) {
      const double want = weights[i] / wsum;
      ok = ok && std::abs(shares[i] - want) <= 0.10 * want;
      report += " nice " + std::to_string(nices[i]) + " got " + std::to_string(shares[i]) + " (entitled to " +
                std::to_string(want) + ")";
    }
    if (ok) return;
  }
  ADD_FAILURE() << policy << ": CPU shares missed the weights by more than 10% in every attempt:" << report;
}

TEST(WeightedShares, CfsFollowsNiceWeights) {
  Watchdog wd;
  expect_weighted_shares("cfs");
}

TEST(WeightedShares, EevdfFollowsNiceWeights) {
  Watchdog wd;
  expect_weighted_shares("eevdf");
}

TEST(RoundRobin, YieldingTasksRunInRotation) {
  Watchdog wd;
  auto rt = make_single_worker_runtime("rr");
  ASSERT_NE(rt, nullptr);
  rt->set_policy_param("slice_us", "1000000");  // once ticks fire, they must not reorder the rotation
  const int n = 5;
  const int rounds = static_cast<int>(scaled(200, 20));
  std::vector<int> trace;  // only touched by tasks on the single worker
  rt->block_on([&] {
    std::vector<JoinHandle> hs;
    for (int i = 0; i < n; ++i) {
      hs.push_back(skyloft::spawn([&trace, i, rounds] {
        for (int r = 0; r < rounds; ++r) {
          trace.push_back(i);
          spin_ns(5'000);
          this_task::yield();
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  ASSERT_EQ(trace.size(), static_cast<std::size_t>(n * rounds));
  for (std::size_t i = 0; i < trace.size(); ++i) {
    ASSERT_EQ(trace[i], static_cast<int>(i % n)) << "position " << i << ": tasks did not run in rotation";
  }
}

// ---- through a runtime with a preemption mechanism: tasks spin and never yield ----

struct Preempted {
  bool available = false;           // false: the timer mechanism cannot run here
  std::vector<std::uint64_t> busy;  // per task: the time it saw itself running
  std::uint64_t checks = 0;         // quantum expiries on which the policy's tick was asked
  std::uint64_t preemptions = 0;    // ticks that said preempt
};

// On one worker under the "timer" mechanism (100 us quantum), tasks of the given nice values spin for
// `total_ns` without yielding. A task counts the time between two of its clock readings as its own when no
// other task ran in between (as the policies account wall time: a quantum check that does not switch, or
// the kernel taking the worker's core, is charged to the running task).
Preempted spin_preempted(const std::string& policy, const std::vector<std::pair<std::string, std::string>>& params,
                         const std::vector<int>& nices, std::uint64_t total_ns) {
  skyloft::Config c = make_config(policy);
  c.preempt = "timer";
  c.quantum_us = 100;
  Preempted out;
  std::unique_ptr<Runtime> rt;
  try {
    rt = make_single_worker_runtime(c);
  } catch (const skyloft::ConfigError&) {
  }
  if (!rt) return out;
  out.available = true;
  for (auto& [k, v] : params) rt->set_policy_param(k, v);
  out.busy.assign(nices.size(), 0);
  std::atomic<std::size_t> owner{SIZE_MAX};  // the task that read the clock last (one worker)
  run_per_nice(*rt, nices, total_ns, [&out, &owner](std::size_t i, std::uint64_t end) {
    for (std::uint64_t last = now_ns(), now = last; now < end; last = now) {
      skyloft::preempt_point();  // under TSan the mechanisms only raise the flag
      now = now_ns();
      if (owner.load(std::memory_order_relaxed) == i) {
        out.busy[i] += now - last;  // nobody else ran since our last reading
      } else {
        owner.store(i, std::memory_order_relaxed);
      }
    }
  });
  for (const auto& w : rt->stats()) {
    out.checks += w.preempt_checks;
    out.preemptions += w.preemptions;
  }
  return out;
}

// Time slices only end at quantum ticks and the kernel may stretch them (the policies account wall time),
// so a slice of S gives at most total / S preemptions; too few would mean no time slicing at all.
void expect_slices(const Preempted& r, std::uint64_t total_ns, std::uint64_t slice_ns, const std::string& what) {
  EXPECT_LE(r.preemptions, total_ns / (slice_ns * 9 / 10) + 5) << what << ": tasks preempted before their slice";
  EXPECT_GE(r.preemptions, total_ns / slice_ns / 50) << what << ": spinning tasks were hardly time-sliced";
}

TEST(Preempted, RrSlicesSpinningTasks) {
  Watchdog wd;
  const std::uint64_t total = 150'000'000;
  auto r = spin_preempted("rr", {}, {0, 0, 0}, total);
  if (!r.available) GTEST_SKIP() << "the timer mechanism is not available";
  expect_slices(r, total, 100'000, "rr, slice = quantum");
  r = spin_preempted("rr", {{"slice_us", "1000"}}, {0, 0, 0}, total);
  expect_slices(r, total, 1'000'000, "rr, slice 1 ms");
  EXPECT_GT(r.checks, r.preemptions) << "rr with a 1 ms slice should decline the 100 us quantum checks";
}

TEST(Preempted, EevdfSwitchesAfterTheSlice) {
  // Two spinning tasks: each keeps the core until it has used its request S, then the other runs.
  Watchdog wd;
  const std::uint64_t total = 150'000'000;
  for (std::uint64_t slice_us : {300u, 1500u}) {
    const auto r = spin_preempted("eevdf", {{"slice_us", std::to_string(slice_us)}}, {0, 0}, total);
    if (!r.available) GTEST_SKIP() << "the timer mechanism is not available";
    expect_slices(r, total, slice_us * 1000, "eevdf, slice " + std::to_string(slice_us) + " us");
    EXPECT_GT(r.checks, r.preemptions) << "eevdf should decline the quantum checks before the slice is used";
    // Not a fairness bound (WeightedShares has those): the time a loaded machine takes the worker's thread
    // away is lost at the switches, and measured up to half the run under sanitizers beside other builds.
    for (std::size_t i = 0; i < r.busy.size(); ++i) EXPECT_GT(r.busy[i], total / 10) << "task " << i << " starved";
  }
}

class PerCpu : public ::testing::TestWithParam<std::string> {
 private:
  Watchdog watchdog_;
};

// Spawns from outside the runtime (a generator thread) go to a spinning worker, else a parked one, before
// queueing behind a running task; with every worker busy they still rotate; stalled workers are skipped.
TEST(OutsideSpawn, PrefersASpinningThenAParkedWorkerOverABusyOne) {
  for (const char* name : {"fifo", "rr", "cfs", "eevdf"}) {
    SCOPED_TRACE(name);
    FakeHost host(4);
    auto policy = skyloft::make_policy(name);
    policy->init(host);
    for (int w = 0; w < 4; ++w) policy->init_worker(w);
    std::vector<std::unique_ptr<FakeTask>> tasks;
    // Where the next outside spawn lands: the worker whose queue has it.
    auto spawn_from_outside = [&]() -> int {
      tasks.push_back(std::make_unique<FakeTask>());
      tasks.back()->info.id = tasks.size();
      policy->task_init(tasks.back()->task());
      policy->spawn(tasks.back()->task(), -1, -1);
      for (int w = 0; w < 4; ++w) {
        if (skyloft::Task* t = policy->pick_next(w)) {
          EXPECT_EQ(t, tasks.back()->task());
          policy->task_finish(t, w);
          return w;
        }
      }
      ADD_FAILURE() << "the spawned task is on no worker";
      return -1;
    };
    host.idle[2] = true;  // 0, 1, 3 run tasks; 2 spins
    for (int i = 0; i < 4; ++i) EXPECT_EQ(spawn_from_outside(), 2);
    host.idle[2] = false;
    host.parked[3] = true;  // nobody spins; 3 sleeps
    for (int i = 0; i < 4; ++i) EXPECT_EQ(spawn_from_outside(), 3);
    host.parked[3] = false;  // all busy: round robin over all of them
    std::set<int> seen;
    for (int i = 0; i < 8; ++i) seen.insert(spawn_from_outside());
    EXPECT_EQ(seen.size(), 4u);
    // A stalled worker (its thread off the CPU, as the monitor saw) gets nothing, even while it looks
    // idle or parked; the others keep rotating.
    host.stalled[1] = true;
    host.idle[1] = true;
    seen.clear();
    for (int i = 0; i < 8; ++i) seen.insert(spawn_from_outside());
    EXPECT_EQ(seen, (std::set<int>{0, 2, 3}));
    host.idle[1] = false;
    host.parked[1] = true;
    for (int i = 0; i < 4; ++i) EXPECT_NE(spawn_from_outside(), 1);
    host.parked[1] = false;
    for (int w = 0; w < 4; ++w) host.stalled[static_cast<std::size_t>(w)] = true;  // all stalled: rotate anyway
    seen.clear();
    for (int i = 0; i < 8; ++i) seen.insert(spawn_from_outside());
    EXPECT_EQ(seen.size(), 4u);
  }
}

TEST_P(PerCpu, PinnedTasksStayOnTheirWorker) {
  // In turn on every worker: pinned and unpinned spinners all start there; the other workers are idle and
  // pull the unpinned ones, never the pinned ones.
  Runtime rt(make_config(GetParam()));
  if (rt.num_workers() < 2) GTEST_SKIP() << "needs two workers";
  const auto cores = rt.worker_cores();
  for (std::size_t busy = 0; busy < cores.size(); ++busy) {
    std::atomic<int> misplaced{0};
    bool pulled_any = false;
    std::atomic<int> bad_index{0};
    rt.block_on([&] {
      std::vector<JoinHandle> hs;
      // Run at least 10 ms, and on until an idle worker has pulled an unpinned task (or slack() passes).
      const auto min_end = Clock::now() + 10ms, max_end = Clock::now() + slack();
      std::atomic<bool> pulled{false};
      auto keep_going = [&] {
        const auto now = Clock::now();
        return now < min_end || (!pulled.load(std::memory_order_relaxed) && now < max_end);
      };
      for (std::size_t i = 0; i < 4 * cores.size() + 3; ++i) {
        const bool pinned = i % 4 == 0;
        SpawnOptions o;
        o.core = cores[busy];
        o.pin = pinned;
        hs.push_back(skyloft::spawn(
            [&, pinned] {
              while (keep_going()) {
                const int w = this_task::worker_index();
                if (w < 0 || w >= static_cast<int>(cores.size())) {
                  bad_index.store(w);
                  continue;
                }
                if (!pinned && w != static_cast<int>(busy)) pulled.store(true, std::memory_order_relaxed);
                if (pinned && w != static_cast<int>(busy)) misplaced.fetch_add(1);
                spin_ns(5'000);
                this_task::yield();
              }
            },
            o));
      }
      for (auto& h : hs) h.join();
      pulled_any = pulled.load();
    });
    EXPECT_EQ(bad_index.load(), 0) << "this_task::worker_index() returned a bad index in a task";
    EXPECT_EQ(misplaced.load(), 0) << "a task pinned to worker " << busy << " ran elsewhere";
    EXPECT_TRUE(pulled_any) << "idle workers did not pull work from worker " << busy;
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, PerCpu, ::testing::Values("rr", "cfs", "eevdf"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
