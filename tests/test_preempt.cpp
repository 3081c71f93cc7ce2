// test_preempt.cpp - preemption: a spinning task cannot starve another on its core (every mechanism, several
// policies), flag preempts only at preempt points, vector/x87/MXCSR state survives thousands of
// preemptions, PreemptGuard regions are never preempted and the deferred preemption happens right after
// them, libc under a short quantum neither deadlocks nor corrupts, bad preemption settings are clear errors,
// and sq shares its worker between a long and a short task; flag times quanta without waking a thread.
#include <fenv.h>
#include <gtest/gtest.h>
#include <xmmintrin.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "skyloft/preempt.hpp"  // not (yet) in the umbrella header
#include "skyloft/skyloft.hpp"
#include "test_util.hpp"
#include "thread_cpu.hpp"  // bench/: the ticker's wake-ups

namespace {

using namespace std::chrono_literals;
using namespace skytest;
using skyloft::Config;
using skyloft::JoinHandle;
using skyloft::Runtime;
using skyloft::WorkerStats;
namespace this_task = skyloft::this_task;

// A one-worker runtime (one core; two for centralized policies, whose dispatcher needs its own), or a
// skipped test.
#define SINGLE_WORKER_RUNTIME(rt, cfg)                                                          \
  auto rt = make_single_worker_runtime(cfg);                                                   \
  if (!rt) GTEST_SKIP() << "policy " << (cfg).policy << " cannot run with a single worker here"

// Sets `stop` (and `timed_out`) from a plain thread if `stop` is not set within `limit`: a loop that is never
// preempted then still ends, and the test fails instead of hanging.
class StopAfter {
 public:
  StopAfter(std::atomic<bool>& stop, std::chrono::milliseconds limit)
      : thread_([this, &stop, limit] {
          const auto end = Clock::now() + limit;
          while (!stop.load() && !done_.load()) {
            if (Clock::now() > end) {
              timed_out = true;
              stop = true;
              return;
            }
            std::this_thread::sleep_for(1ms);
          }
        }) {}
  ~StopAfter() {
    done_ = true;
    thread_.join();
  }
  std::atomic<bool> timed_out{false};

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

class PreemptTest : public ::testing::TestWithParam<PolicyAndMechanism> {
 protected:
  const std::string& policy() const { return std::get<0>(GetParam()); }
  const std::string& mechanism() const { return std::get<1>(GetParam()); }
  bool is_flag() const { return mechanism() == "flag"; }
  Config config(std::uint32_t quantum_us = 50) const { return preempt_config(policy(), mechanism(), quantum_us); }
  // Under ThreadSanitizer a signal handler runs late with a copy of the context, so the runtime cannot
  // redirect an interrupted task: every mechanism preempts only at preempt points and runtime entries (the
  // flag behaviour; README, "Preemption"). Tests of asynchronous preemption of code without preempt
  // points therefore do not apply there.
  bool async_preemption_unavailable() const { return kTsan && !is_flag(); }

 private:
  Watchdog watchdog_;
};

// ------------------------------------------------------------------------------------------------------------
// A spinner cannot starve another task on its core
// ------------------------------------------------------------------------------------------------------------

class SpinnerTest : public PreemptTest {};

// The spinner never yields: a plain loop reading an atomic (with preempt_point() in it under flag, which only
// preempts there). The other task needs the core for `yields` rounds; it finishes while the spinner spins.
TEST_P(SpinnerTest, SpinnerDoesNotStarveAnotherTaskOnItsCore) {
  if (async_preemption_unavailable()) GTEST_SKIP() << "ThreadSanitizer build: signal mechanisms preempt only at preempt points";
  SINGLE_WORKER_RUNTIME(rt, config());
  const int yields = static_cast<int>(scaled(200, 20));
  std::atomic<bool> stop{false}, spinner_started{false};
  std::atomic<int> done_yields{0};
  std::atomic<std::uint64_t> spins{0};
  std::atomic<bool> spinner_ran_after_yielder{false};
  const bool flag = is_flag();
  StopAfter guard(stop, slack());
  const auto before = worker_stats(*rt);
  rt->block_on([&] {
    JoinHandle spinner = skyloft::spawn([&] {
      spinner_started = true;
      std::uint64_t n = 0;
      if (flag) {
        while (!stop.load(std::memory_order_relaxed)) {
          ++n;
          skyloft::preempt_point();
        }
      } else {
        while (!stop.load(std::memory_order_relaxed)) ++n;
      }
      spins = n;
    });
    JoinHandle yielder = skyloft::spawn([&] {
      // Only runs if the spinner was preempted (fifo order: the spinner runs first), or if it started first.
      for (int i = 0; i < yields; ++i) {
        done_yields.fetch_add(1);
        this_task::yield();
      }
      spinner_ran_after_yielder = spinner_started.load();
      stop = true;
    });
    yielder.join();
    spinner.join();
  });
  EXPECT_FALSE(guard.timed_out.load()) << "the spinner starved the other task: it completed " << done_yields.load()
                                       << " of " << yields << " yields in " << slack().count() << " ms";
  EXPECT_EQ(done_yields.load(), yields);
  EXPECT_TRUE(spinner_ran_after_yielder.load());
  EXPECT_GT(spins.load(), 0u);
  const auto after = worker_stats(*rt);
  EXPECT_GE(after.preemptions - before.preemptions, 1u) << "the yielder finished without any preemption";
  EXPECT_GE(after.preempt_checks, after.preemptions);
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, SpinnerTest,
                         ::testing::Combine(::testing::ValuesIn(kPolicies), ::testing::ValuesIn(kPreemptingMechanisms)),
                         param_name);

// flag never interrupts: a spinner with no preempt point keeps the core however long another task waits.
class FlagTest : public PreemptTest {};

TEST_P(FlagTest, SpinnerWithoutPreemptPointsIsNotPreempted) {
  SINGLE_WORKER_RUNTIME(rt, config());
  const auto spin_for = 50ms;
  std::atomic<bool> waiter_ready{false}, spinner_started{false}, stop{false};
  std::atomic<int> progress{0};
  std::atomic<int> progress_during_spin{-1};
  StopAfter guard(stop, slack());
  rt->block_on([&] {
    // The waiter runs first and is runnable (yielding) for the spinner's whole run.
    JoinHandle waiter = skyloft::spawn([&] {
      waiter_ready = true;
      while (!spinner_started.load()) this_task::yield();
      while (!stop.load()) {
        progress.fetch_add(1);
        this_task::yield();
      }
    });
    JoinHandle spinner = skyloft::spawn([&] {
      while (!waiter_ready.load()) this_task::yield();
      spinner_started = true;
      const int start = progress.load();
      const auto end = Clock::now() + spin_for;
      std::uint64_t n = 0;
      while (Clock::now() < end) ++n;  // no preempt point, no runtime entry
      progress_during_spin = progress.load() - start;
      // Now with preempt points: the waiter gets the core back.
      const int before = progress.load();
      while (progress.load() == before && !stop.load()) skyloft::preempt_point();
      stop = true;
    });
    spinner.join();
    waiter.join();
  });
  EXPECT_FALSE(guard.timed_out.load()) << "preempt_point() never gave the core to the waiting task";
  EXPECT_EQ(progress_during_spin.load(), 0)
      << "under flag a task without preempt points was preempted (the waiter ran during its spin)";
  EXPECT_GE(worker_stats(*rt).preemptions, 1u);
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, FlagTest,
                         ::testing::Combine(::testing::ValuesIn(kPolicies), ::testing::Values("flag")), param_name);

// ------------------------------------------------------------------------------------------------------------
// Register state survives preemption
// ------------------------------------------------------------------------------------------------------------

struct alignas(32) YmmPattern {
  std::uint64_t value[16][4];
  std::uint64_t inverse[16][4];
};

YmmPattern make_pattern(std::uint64_t seed) {
  YmmPattern p;
  std::uint64_t x = seed;
  for (int r = 0; r < 16; ++r) {
    for (int q = 0; q < 4; ++q) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      p.value[r][q] = x;
      p.inverse[r][q] = ~x;
    }
  }
  return p;
}

#define SKY_YMM_CHECK(i)                                     \
  "vptest " #i "*32(%[v]), %%ymm" #i "\n\t"                  \
  "jnc 2f\n\t" /* CF=0: a pattern bit is clear in ymm */     \
  "vptest " #i "*32(%[inv]), %%ymm" #i "\n\t"                \
  "jnz 2f\n\t" /* ZF=0: ymm has a bit the pattern lacks */

// Loads ymm0..ymm15 from `p` once, then checks all sixteen against `p` `iterations` times without reloading;
// returns how many checks found a register changed. Any preemption inside must restore them exactly.
std::uint64_t ymm_hold_and_check(const YmmPattern& p, std::uint64_t iterations) {
  std::uint64_t bad = 0;
  asm volatile(
      "vmovdqa 0*32(%[v]), %%ymm0\n\t"
      "vmovdqa 1*32(%[v]), %%ymm1\n\t"
      "vmovdqa 2*32(%[v]), %%ymm2\n\t"
      "vmovdqa 3*32(%[v]), %%ymm3\n\t"
      "vmovdqa 4*32(%[v]), %%ymm4\n\t"
      "vmovdqa 5*32(%[v]), %%ymm5\n\t"
      "vmovdqa 6*32(%[v]), %%ymm6\n\t"
      "vmovdqa 7*32(%[v]), %%ymm7\n\t"
      "vmovdqa 8*32(%[v]), %%ymm8\n\t"
      "vmovdqa 9*32(%[v]), %%ymm9\n\t"
      "vmovdqa 10*32(%[v]), %%ymm10\n\t"
      "vmovdqa 11*32(%[v]), %%ymm11\n\t"
      "vmovdqa 12*32(%[v]), %%ymm12\n\t"
      "vmovdqa 13*32(%[v]), %%ymm13\n\t"
      "vmovdqa 14*32(%[v]), %%ymm14\n\t"
      "vmovdqa 15*32(%[v]), %%ymm15\n\t"
      "1:\n\t" SKY_YMM_CHECK(0) SKY_YMM_CHECK(1) SKY_YMM_CHECK(2) SKY_YMM_CHECK(3) SKY_YMM_CHECK(4)
          SKY_YMM_CHECK(5) SKY_YMM_CHECK(6) SKY_YMM_CHECK(7) SKY_YMM_CHECK(8) SKY_YMM_CHECK(9) SKY_YMM_CHECK(10)
              SKY_YMM_CHECK(11) SKY_YMM_CHECK(12) SKY_YMM_CHECK(13) SKY_YMM_CHECK(14) SKY_YMM_CHECK(15)
      "jmp 3f\n\t"
      "2:\n\t"
      "incq %[bad]\n\t"
      "3:\n\t"
      "decq %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : [bad] "+r"(bad), [n] "+r"(iterations)
      : [v] "r"(&p.value[0][0]), [inv] "r"(&p.inverse[0][0])
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  return bad;
}

class SignalMechanismTest : public PreemptTest {};

TEST_P(SignalMechanismTest, YmmRegistersSurviveThousandsOfPreemptions) {
  if (async_preemption_unavailable()) GTEST_SKIP() << "ThreadSanitizer build: signal mechanisms preempt only at preempt points";
  if (!__builtin_cpu_supports("avx")) GTEST_SKIP() << "this CPU has no AVX";
  SINGLE_WORKER_RUNTIME(rt, config(20));
  const std::uint64_t target = 1000;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> mismatches{0}, rounds{0};
  StopAfter guard(stop, slack() * 2);
  auto body = [&](std::uint64_t seed) {
    const YmmPattern p = make_pattern(seed);
    while (!stop.load(std::memory_order_relaxed)) {
      mismatches.fetch_add(ymm_hold_and_check(p, 20'000));
      rounds.fetch_add(1);
      if (worker_stats(*Runtime::current()).preemptions >= target) stop = true;
    }
  };
  rt->block_on([&] {
    JoinHandle a = skyloft::spawn([&] { body(0x9e3779b97f4a7c15ull); });
    JoinHandle b = skyloft::spawn([&] { body(0xd1b54a32d192ed03ull); });
    a.join();
    b.join();
  });
  const auto s = worker_stats(*rt);
  EXPECT_FALSE(guard.timed_out.load()) << "only " << s.preemptions << " preemptions in " << (slack() * 2).count()
                                       << " ms";
  EXPECT_GE(s.preemptions, target);
  EXPECT_EQ(mismatches.load(), 0u) << "a ymm register changed across a preemption (" << rounds.load() << " rounds)";
  EXPECT_TRUE(rt->shutdown().clean());
}

// x87 control word and MXCSR (both carry the rounding mode) are per task.
TEST_P(SignalMechanismTest, RoundingModeSurvivesPreemption) {
  if (async_preemption_unavailable()) GTEST_SKIP() << "ThreadSanitizer build: signal mechanisms preempt only at preempt points";
  SINGLE_WORKER_RUNTIME(rt, config(20));
  const std::uint64_t target = scaled(300, 50);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad_mode{0}, bad_value{0}, rounds{0};
  std::atomic<std::uint64_t> quotient_bits[2] = {0, 0};
  StopAfter guard(stop, slack() * 2);
  auto body = [&](int which, int mode) {
    if (fesetround(mode) != 0) {
      bad_mode.fetch_add(1);
      return;
    }
    const unsigned mxcsr_rc = mode == FE_UPWARD ? 0x4000u : 0x0000u;
    volatile double one = 1.0, three = 3.0;
    volatile long double lone = 1.0L, lthree = 3.0L;
    const double q0 = one / three;             // SSE: MXCSR rounding
    const long double lq0 = lone / lthree;     // x87: control-word rounding
    std::uint64_t bits;
    std::memcpy(&bits, &q0, sizeof bits);
    quotient_bits[which] = bits;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 2000; ++i) {
        if (one / three != q0 || lone / lthree != lq0) bad_value.fetch_add(1);
      }
      if (fegetround() != mode || (_mm_getcsr() & 0x6000u) != mxcsr_rc) bad_mode.fetch_add(1);
      rounds.fetch_add(1);
      if (worker_stats(*Runtime::current()).preemptions >= target) stop = true;
    }
    fesetround(FE_TONEAREST);
  };
  rt->block_on([&] {
    JoinHandle up = skyloft::spawn([&] { body(0, FE_UPWARD); });
    JoinHandle nearest = skyloft::spawn([&] { body(1, FE_TONEAREST); });
    up.join();
    nearest.join();
  });
  EXPECT_FALSE(guard.timed_out.load());
  EXPECT_GE(worker_stats(*rt).preemptions, target);
  EXPECT_NE(quotient_bits[0].load(), quotient_bits[1].load()) << "the two rounding modes gave the same 1/3";
  EXPECT_EQ(bad_mode.load(), 0u) << "a task's rounding mode changed across a preemption";
  EXPECT_EQ(bad_value.load(), 0u) << "a task computed with another task's rounding mode";
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, SignalMechanismTest,
                         ::testing::Combine(::testing::Values("fifo", "rr"), ::testing::ValuesIn(kSignalMechanisms)),
                         param_name);

// ------------------------------------------------------------------------------------------------------------
// Preemption-disabled regions
// ------------------------------------------------------------------------------------------------------------

class GuardTest : public PreemptTest {};

TEST_P(GuardTest, PreemptGuardRegionIsNeverPreempted) {
  if (async_preemption_unavailable()) GTEST_SKIP() << "ThreadSanitizer build: signal mechanisms preempt only at preempt points";
  const std::uint32_t quantum_us = 50;
  SINGLE_WORKER_RUNTIME(rt, config(quantum_us));
  const auto region = std::chrono::microseconds(quantum_us * 20);  // 20 quanta
  const bool flag = is_flag();
  const int rounds = static_cast<int>(scaled(20, 5));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> other_runs{0};
  std::atomic<int> ran_inside{0}, no_switch_after{0}, moved{0}, switched_inside{0}, no_request{0}, flag_lost{0};
  StopAfter guard(stop, slack() * 2);
  const auto before = worker_stats(*rt);
  rt->block_on([&] {
    JoinHandle other = skyloft::spawn([&] {
      while (!stop.load()) {
        other_runs.fetch_add(1);
        this_task::yield();
      }
    });
    JoinHandle holder = skyloft::spawn([&] {
      for (int r = 0; r < rounds && !stop.load(); ++r) {
        // Let the other task run first, so it waits for the core during the whole region.
        const auto seen = other_runs.load();
        while (other_runs.load() == seen && !stop.load()) this_task::yield();
        std::uint64_t inside_before, inside_after, switches_inside_end;
        int worker;
        {
          skyloft::PreemptGuard g;
          worker = this_task::worker_index();
          const auto sw0 = worker_stats(*Runtime::current(), static_cast<std::size_t>(worker)).switches;
          inside_before = other_runs.load();
          const auto deferred0 = worker_stats(*Runtime::current(), static_cast<std::size_t>(worker)).preempt_deferred;
          // Spin for the region, and on until a preemption is pending (the ticker thread floats and may run
          // late on a loaded machine): a deferred interrupt for the signal mechanisms, the raised flag for flag.
          const auto end = Clock::now() + region;
          const auto give_up = Clock::now() + slack();
          for (;;) {
            if (flag) skyloft::preempt_point();
            const auto now = Clock::now();
            if (now > give_up) {
              no_request.fetch_add(1);
              break;
            }
            if (now < end) continue;
            if (flag ? skyloft::detail::preempt_requested() != 0
                     : worker_stats(*Runtime::current(), static_cast<std::size_t>(worker)).preempt_deferred !=
                           deferred0) {
              break;
            }
          }
          inside_after = other_runs.load();
          const auto sw1 = worker_stats(*Runtime::current(), static_cast<std::size_t>(worker)).switches;
          switches_inside_end = sw1;
          if (this_task::worker_index() != worker) moved.fetch_add(1);
          if (sw1 != sw0) switched_inside.fetch_add(1);
          if (skyloft::detail::preempt_requested() == 0) flag_lost.fetch_add(1);
        }
        // The guard's end honours the preemption deferred during the region: this task left the core (the
        // other one was dispatched; it may itself be preempted before it counts a run, by an interrupt
        // delivered late on a loaded machine, so its counter is not the test).
        if (worker_stats(*Runtime::current(), static_cast<std::size_t>(worker)).switches == switches_inside_end) {
          no_switch_after.fetch_add(1);
        }
        if (inside_after != inside_before) ran_inside.fetch_add(1);
      }
      stop = true;
    });
    holder.join();
    other.join();
  });
  EXPECT_FALSE(guard.timed_out.load());
  EXPECT_EQ(no_request.load(), 0) << "no preemption was requested during a region in " << slack().count() << " ms";
  EXPECT_EQ(ran_inside.load(), 0) << "another task ran on the core inside a PreemptGuard region";
  EXPECT_EQ(flag_lost.load(), 0) << "regions whose pending preemption request was dropped before the guard ended";
  EXPECT_EQ(switched_inside.load(), 0) << "the worker switched tasks inside a PreemptGuard region";
  EXPECT_EQ(moved.load(), 0);
  EXPECT_EQ(no_switch_after.load(), 0) << "of " << rounds
                                        << " regions, these were not followed at once by the deferred preemption";
  const auto after = worker_stats(*rt);
  EXPECT_GE(after.preemptions - before.preemptions, static_cast<std::uint64_t>(rounds));
  if (!flag) {
    EXPECT_GE(after.preempt_deferred - before.preempt_deferred, static_cast<std::uint64_t>(rounds))
        << "the interrupts that hit the regions should have been deferred";
  }
  EXPECT_TRUE(rt->shutdown().clean());
}

// preempt_disable() nests; only the outermost preempt_enable() lets the preemption happen.
TEST_P(GuardTest, NestedDisableDefersToOutermostEnable) {
  if (async_preemption_unavailable()) GTEST_SKIP() << "ThreadSanitizer build: signal mechanisms preempt only at preempt points";
  SINGLE_WORKER_RUNTIME(rt, config(50));
  const bool flag = is_flag();
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> other_runs{0};
  std::atomic<int> ran_early{-1}, ran_at_end{-1};
  StopAfter guard(stop, slack());
  rt->block_on([&] {
    JoinHandle other = skyloft::spawn([&] {
      while (!stop.load()) {
        other_runs.fetch_add(1);
        this_task::yield();
      }
    });
    JoinHandle holder = skyloft::spawn([&] {
      const auto seen = other_runs.load();
      while (other_runs.load() == seen) this_task::yield();
      skyloft::preempt_disable();
      skyloft::preempt_disable();
      const auto c0 = other_runs.load();
      const auto end = Clock::now() + 2ms;
      while (Clock::now() < end) {
        if (flag) skyloft::preempt_point();
      }
      skyloft::preempt_enable();  // inner: still disabled
      const auto end2 = Clock::now() + 1ms;
      const auto give_up = Clock::now() + slack();
      // On until a preemption is pending (the ticker thread may run late on a loaded machine).
      while (Clock::now() < end2 || (skyloft::detail::preempt_requested() == 0 && Clock::now() < give_up)) {
        if (flag) skyloft::preempt_point();
      }
      const auto c1 = other_runs.load();
      ran_early = c1 != c0;
      const auto worker = static_cast<std::size_t>(this_task::worker_index());
      const auto switches = worker_stats(*Runtime::current(), worker).switches;
      skyloft::preempt_enable();  // outermost: the deferred preemption happens here
      // This task left the core (not: the other one counted a run, which an interrupt delivered late on a
      // loaded machine may delay by preempting it first).
      ran_at_end = worker_stats(*Runtime::current(), worker).switches != switches;
      stop = true;
    });
    holder.join();
    other.join();
  });
  EXPECT_FALSE(guard.timed_out.load());
  EXPECT_EQ(ran_early.load(), 0) << "preempted after the inner preempt_enable()";
  EXPECT_EQ(ran_at_end.load(), 1) << "the outermost preempt_enable() did not act on the deferred preemption";
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, GuardTest,
                         ::testing::Combine(::testing::Values("fifo", "rr"),
                                            ::testing::ValuesIn(kPreemptingMechanisms)),
                         param_name);

// ------------------------------------------------------------------------------------------------------------
// libc under a short quantum
// ------------------------------------------------------------------------------------------------------------

class LibcStressTest : public PreemptTest {};

TEST_P(LibcStressTest, MallocAndSnprintfUnderShortQuantum) {
  if (async_preemption_unavailable()) GTEST_SKIP() << "ThreadSanitizer build: signal mechanisms preempt only at preempt points";
  Runtime rt(config(20));
  const auto duration = std::chrono::milliseconds(kTsan ? 600 : (kAsan ? 1500 : 3000));
  const int tasks = 16;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> corrupt{0}, ops{0};
  std::vector<JoinHandle> hs;
  for (int t = 0; t < tasks; ++t) {
    hs.push_back(skyloft::spawn([&, t] {
      std::uint64_t x = 0x243f6a8885a308d3ull * static_cast<std::uint64_t>(t + 1);
      auto next = [&x] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
      };
      std::uint64_t local_ops = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        // A few live blocks of random sizes, each filled with its own pattern.
        constexpr int kLive = 8;
        unsigned char* blocks[kLive];
        std::size_t sizes[kLive];
        unsigned char fill[kLive];
        for (int i = 0; i < kLive; ++i) {
          sizes[i] = 1 + next() % (i == 0 ? 65536 : 2048);
          fill[i] = static_cast<unsigned char>(next());
          blocks[i] = static_cast<unsigned char*>(std::malloc(sizes[i]));
          if (blocks[i] == nullptr) {
            corrupt.fetch_add(1);
            sizes[i] = 0;
            continue;
          }
          for (std::size_t j = 0; j < sizes[i]; ++j) blocks[i][j] = static_cast<unsigned char>(fill[i] + j);
        }
        // Formatting: into a stack buffer and into a heap buffer; both must read back exactly.
        char stack_buf[160];
        const unsigned long long v = next();
        const double d = static_cast<double>(v % 100000) / 7.0;
        const int len = std::snprintf(stack_buf, sizeof stack_buf, "task %d op %llu val %llx %.6f %s", t,
                                      static_cast<unsigned long long>(local_ops), v, d, "end");
        char* heap_buf = static_cast<char*>(std::malloc(static_cast<std::size_t>(len) + 1));
        if (len <= 0 || heap_buf == nullptr) {
          corrupt.fetch_add(1);
        } else {
          std::snprintf(heap_buf, static_cast<std::size_t>(len) + 1, "task %d op %llu val %llx %.6f %s", t,
                        static_cast<unsigned long long>(local_ops), v, d, "end");
          for (int j = 0; j <= len; ++j) {
            if (heap_buf[j] != stack_buf[j]) {
              corrupt.fetch_add(1);
              break;
            }
          }
          int parsed_t = -1;
          unsigned long long parsed_op = 0, parsed_v = 0;
          if (std::sscanf(stack_buf, "task %d op %llu val %llx", &parsed_t, &parsed_op, &parsed_v) != 3 ||
              parsed_t != t || parsed_op != local_ops || parsed_v != v) {
            corrupt.fetch_add(1);
          }
        }
        std::free(heap_buf);
        for (int i = kLive - 1; i >= 0; --i) {
          for (std::size_t j = 0; j < sizes[i]; ++j) {
            if (blocks[i][j] != static_cast<unsigned char>(fill[i] + j)) {
              corrupt.fetch_add(1);
              break;
            }
          }
          std::free(blocks[i]);
        }
        ++local_ops;
      }
      ops.fetch_add(local_ops);
    }));
  }
  std::this_thread::sleep_for(duration);
  stop = true;
  const auto t0 = Clock::now();
  for (auto& h : hs) h.join();
  EXPECT_LT(ms_since(t0), static_cast<double>(slack().count())) << "tasks took too long to finish after stop";
  const auto stats = rt.stats();
  EXPECT_EQ(corrupt.load(), 0u) << "heap blocks or formatted strings were corrupted";
  EXPECT_GT(ops.load(), static_cast<std::uint64_t>(tasks));
  EXPECT_GT(sum_of(stats, &WorkerStats::preemptions), 0u) << "no preemption happened: the test proved nothing";
  EXPECT_TRUE(rt.shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, LibcStressTest,
                         ::testing::Combine(::testing::Values("fifo"), ::testing::ValuesIn(kSignalMechanisms)),
                         param_name);

// ------------------------------------------------------------------------------------------------------------
// sq: processor sharing on its single worker
// ------------------------------------------------------------------------------------------------------------

class SqSharingTest : public PreemptTest {};

TEST_P(SqSharingTest, LongSpinnerDoesNotBlockShortTask) {
  if (async_preemption_unavailable()) GTEST_SKIP() << "ThreadSanitizer build: signal mechanisms preempt only at preempt points";
  auto cores = skyloft::allowed_cores();
  if (cores.size() < 2) GTEST_SKIP() << "sq needs two cores";
  Config c = config(50);
  c.cores = skyloft::format_core_list({cores[0], cores[1]});
  Runtime rt(c);
  ASSERT_EQ(rt.num_workers(), 1u);
  std::atomic<bool> stop{false}, spinning{false}, spinner_done{false}, short_done{false};
  std::atomic<bool> spinner_running_when_short_done{false};
  StopAfter guard(stop, slack());
  JoinHandle spinner = skyloft::spawn([&] {
    spinning = true;
    while (!stop.load(std::memory_order_relaxed)) {
    }
    spinner_done = true;
  });
  ASSERT_TRUE(thread_wait_until([&] { return spinning.load(); }));
  std::this_thread::sleep_for(2ms);  // the spinner is well into its run
  const auto t0 = Clock::now();
  JoinHandle short_task = skyloft::spawn([&] {
    long s = 0;
    for (int i = 0; i < 1000; ++i) s += i;
    spinner_running_when_short_done = !spinner_done.load() && s > 0;
    short_done = true;
  });
  short_task.join();
  const double latency_ms = ms_since(t0);
  stop = true;
  spinner.join();
  EXPECT_FALSE(guard.timed_out.load()) << "the short task waited behind the spinner";
  EXPECT_TRUE(short_done.load());
  EXPECT_TRUE(spinner_running_when_short_done.load()) << "the short task ran only after the spinner finished";
  EXPECT_LT(latency_ms, kTsan ? 2000.0 : 500.0) << "the short task waited " << latency_ms << " ms";
  EXPECT_GE(worker_stats(rt).preemptions, 1u);
  EXPECT_TRUE(rt.shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, SqSharingTest,
                         ::testing::Combine(::testing::Values("sq"), ::testing::Values("timer", "dispatcher", "hybrid")),
                         param_name);

// ------------------------------------------------------------------------------------------------------------
// The ticker's long sleeps can be cut short
// ------------------------------------------------------------------------------------------------------------

class TickerSleepTest : public PreemptTest {};

// One worker. The main task waits on a condition variable with a far deadline (a timer armed on the only
// processor), and a spinner runs with nothing queued behind it: the ticker's next deadline is that timer.
// A task spawned behind the spinner then wakes the ticker (T1), which must preempt the spinner within a
// few quanta, not when the far timer comes due; and shutdown must not wait for that timer either.
// Before the ticker's long sleeps were parks, it slept in clock_nanosleep until the timer (20 s under
// ThreadSanitizer, where every conformance test with a slack() deadline took 20 s to shut down).
TEST_P(TickerSleepTest, ATaskQueuedWhileTheTickerSleepsTowardAFarTimerIsNotLeftWaiting) {
  Config c = config(100);
  c.policy = "rr";
  c.cores = std::to_string(skyloft::allowed_cores().front());
  Runtime rt(c);
  skyloft::Mutex mu;
  skyloft::CondVar cv;
  bool finished = false;
  std::atomic<bool> stop{false}, first_ran{false}, second_ran{false};
  std::atomic<double> second_wait_ms{-1};
  StopAfter guard(stop, slack());
  rt.block_on([&] {
    JoinHandle spinner = skyloft::spawn([&] {
      auto spin_until = [&](auto done) {
        while (!done() && !stop.load(std::memory_order_relaxed)) skyloft::preempt_point();
      };
      JoinHandle first = skyloft::spawn([&] { first_ran = true; });  // T1: the ticker wakes, preempts us
      spin_until([&] { return first_ran.load(); });
      const auto t_idle = Clock::now();  // the ticker rescans with nothing queued: it sleeps toward the timer
      spin_until([&] { return Clock::now() - t_idle > 20ms; });
      const auto t0 = Clock::now();
      JoinHandle second = skyloft::spawn([&] { second_ran = true; });  // T1 again
      spin_until([&] { return second_ran.load(); });
      second_wait_ms = ms_since(t0);
      first.join();
      second.join();
      std::lock_guard<skyloft::Mutex> lk(mu);
      finished = true;
      cv.notify_one();
    });
    std::unique_lock<skyloft::Mutex> lk(mu);
    EXPECT_TRUE(cv.wait_for(lk, 10min, [&] { return finished; }));  // the far timer, on the only processor
    lk.unlock();
    spinner.join();
  });
  EXPECT_FALSE(guard.timed_out.load()) << "the task spawned behind the spinner did not run within " << slack().count()
                                       << " ms: the ticker slept toward the far timer";
  EXPECT_TRUE(second_ran.load());
  EXPECT_LT(second_wait_ms.load(), kTsan ? 2000.0 : 500.0) << "the task spawned behind the spinner waited";
  const auto t_stop = Clock::now();
  EXPECT_TRUE(rt.shutdown().clean());
  EXPECT_LT(ms_since(t_stop), kTsan ? 5000.0 : 1000.0) << "shutdown waited for the ticker's sleep";
}

INSTANTIATE_TEST_SUITE_P(All, TickerSleepTest,
                         ::testing::Combine(::testing::Values("rr"), ::testing::Values("flag", "dispatcher", "hybrid")),
                         param_name);

// flag times quanta on the processor itself (core/preemption.cpp Q1-Q4): two tasks sharing one worker, each
// spinning with preempt points, take turns every quantum, and the ticker thread does not wake for those
// quanta. A ticker that watched them woke about once per turn (each wake-up a kernel context switch that
// takes the CPU from a worker).
class SelfTimedQuantumTest : public PreemptTest {};

TEST_P(SelfTimedQuantumTest, TasksTakeTurnsWithoutWakingTheTicker) {
  SINGLE_WORKER_RUNTIME(rt, config(50));
  std::atomic<bool> stop{false};
  std::atomic<int> last{-1};
  std::atomic<std::uint64_t> turns{0};
  StopAfter guard(stop, slack());
  auto ticker_wakeups = [] {
    std::uint64_t n = 0;
    for (const auto& [tid, t] : skyloft::bench::thread_snap()) {
      if (t.role == skyloft::bench::kTicker) n += t.voluntary;
    }
    return n;
  };
  std::uint64_t wakeups = 0;
  const auto before = worker_stats(*rt);
  rt->block_on([&] {
    auto spinner = [&](int me) {
      const auto end = Clock::now() + 200ms;
      while (Clock::now() < end && !stop.load(std::memory_order_relaxed)) {
        if (last.exchange(me, std::memory_order_relaxed) != me) turns.fetch_add(1, std::memory_order_relaxed);
        skyloft::preempt_point();
      }
    };
    const std::uint64_t w0 = ticker_wakeups();
    JoinHandle a = skyloft::spawn([&] { spinner(0); });
    JoinHandle b = skyloft::spawn([&] { spinner(1); });
    a.join();
    b.join();
    wakeups = ticker_wakeups() - w0;
  });
  const auto after = worker_stats(*rt);
  EXPECT_FALSE(guard.timed_out.load());
  // 200 ms of 50 us quanta is ~4000 turns; a loaded or instrumented machine gets far fewer, but many.
  EXPECT_GE(turns.load(), 50u) << "the two spinners did not take turns on their core";
  EXPECT_GE(after.preemptions - before.preemptions, turns.load() - 2) << "a turn without a preemption";
  EXPECT_LT(wakeups, turns.load() / 4) << "the ticker woke " << wakeups << " times for " << turns.load()
                                       << " turns: it watched the runs";
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, SelfTimedQuantumTest,
                         ::testing::Combine(::testing::Values("rr", "cfs", "eevdf"), ::testing::Values("flag")),
                         param_name);

// ------------------------------------------------------------------------------------------------------------
// Configuration errors
// ------------------------------------------------------------------------------------------------------------

class PreemptConfig : public ::testing::Test {
 private:
  Watchdog watchdog_;
};

TEST_F(PreemptConfig, QuantumZeroIsAnError) {
  for (const auto& m : kPreemptingMechanisms) {
    Config c = preempt_config("fifo", m, 0);
    EXPECT_CONFIG_ERROR(Runtime rt(c), "quantum") << m;
  }
}

TEST_F(PreemptConfig, QuantumAboveOneSecondIsAnError) {
  for (const auto& m : kPreemptingMechanisms) {
    Config c = preempt_config("fifo", m, 1'000'001);
    EXPECT_CONFIG_ERROR(Runtime rt(c), "1000001") << m;
    EXPECT_CONFIG_ERROR(Runtime rt(c), "quantum") << m;
  }
  // The bounds themselves are fine.
  for (std::uint32_t q : {1u, 1'000'000u}) {
    Runtime rt(preempt_config("fifo", "timer", q));
    std::atomic<bool> ran{false};
    rt.block_on([&] { ran = true; });
    EXPECT_TRUE(ran.load()) << q;
  }
}

TEST_F(PreemptConfig, UnknownMechanismListsTheKnownOnes) {
  for (const char* bad : {"bogus", "", "Timer", "signal"}) {
    Config c = preempt_config("fifo", bad, 100);
    EXPECT_CONFIG_ERROR(Runtime rt(c), "bogus", "mechanism") << "'" << bad << "'";
    try {
      Runtime rt(c);
      ADD_FAILURE() << "preempt='" << bad << "' started";
    } catch (const skyloft::ConfigError& e) {
      const std::string msg = e.what();
      for (const char* known : {"none", "timer", "dispatcher", "flag", "hybrid", "uintr"}) {
        EXPECT_NE(msg.find(known), std::string::npos) << "message does not list '" << known << "': " << msg;
      }
      if (*bad != '\0') {
        EXPECT_NE(msg.find(bad), std::string::npos) << "message does not name the bad value: " << msg;
      }
    }
  }
}

TEST_F(PreemptConfig, UintrIsRefusedWithTheReason) {
  Config c = preempt_config("fifo", "uintr", 100);
  EXPECT_CONFIG_ERROR(Runtime rt(c), "UINTR");
  // The failed start leaves nothing behind.
  Runtime rt(preempt_config("fifo", "timer", 100));
  std::atomic<bool> ran{false};
  rt.block_on([&] { ran = true; });
  EXPECT_TRUE(ran.load());
}

TEST_F(PreemptConfig, HybridGraceOutOfRangeIsAnError) {
  Config c = preempt_config("fifo", "hybrid", 100);
  c.hybrid_grace_us = 0;
  EXPECT_CONFIG_ERROR(Runtime rt(c), "hybrid_grace_us", "grace");
  c.hybrid_grace_us = 1'000'001;
  EXPECT_CONFIG_ERROR(Runtime rt(c), "hybrid_grace_us", "grace");
}

TEST_F(PreemptConfig, EnvVariablesAreRead) {
  ScopedEnv p("SKYLOFT_PREEMPT", std::string(" hybrid "));
  ScopedEnv q("SKYLOFT_QUANTUM_US", std::string("75"));
  ScopedEnv g("SKYLOFT_HYBRID_GRACE_US", std::string("30"));
  const Config c = Config::from_env();
  EXPECT_EQ(c.preempt, "hybrid");
  EXPECT_EQ(c.quantum_us, 75u);
  EXPECT_EQ(c.hybrid_grace_us, 30u);
  ScopedEnv unset_p("SKYLOFT_PREEMPT", std::nullopt);
  ScopedEnv unset_q("SKYLOFT_QUANTUM_US", std::nullopt);
  ScopedEnv unset_g("SKYLOFT_HYBRID_GRACE_US", std::nullopt);
  const Config d = Config::from_env();
  EXPECT_EQ(d.preempt, "none");
  EXPECT_EQ(d.quantum_us, Config{}.quantum_us);
}

TEST_F(PreemptConfig, EnvParsingErrors) {
  for (const char* bad : {"abc", "-5", "12x", "", "99999999999", "1000001"}) {
    ScopedEnv q("SKYLOFT_QUANTUM_US", std::string(bad));
    EXPECT_CONFIG_ERROR(Config::from_env(), "SKYLOFT_QUANTUM_US") << "'" << bad << "'";
  }
  for (const char* bad : {"abc", "-1", ""}) {
    ScopedEnv g("SKYLOFT_HYBRID_GRACE_US", std::string(bad));
    EXPECT_CONFIG_ERROR(Config::from_env(), "SKYLOFT_HYBRID_GRACE_US") << "'" << bad << "'";
  }
  {
    // A quantum of 0 parses, but starting a preempting runtime with it is an error.
    ScopedEnv p("SKYLOFT_PREEMPT", std::string("timer"));
    ScopedEnv q("SKYLOFT_QUANTUM_US", std::string("0"));
    EXPECT_CONFIG_ERROR(Runtime rt(Config::from_env()), "quantum");
  }
  {
    ScopedEnv p("SKYLOFT_PREEMPT", std::string("sometimes"));
    EXPECT_CONFIG_ERROR(Runtime rt(Config::from_env()), "sometimes");
  }
  {
    ScopedEnv p("SKYLOFT_PREEMPT", std::string("uintr"));
    EXPECT_CONFIG_ERROR(Runtime rt(Config::from_env()), "UINTR");
  }
}

}  // namespace
