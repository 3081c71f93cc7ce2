// test_spine.cpp - what the reshaped core promises ordinary C++ code:
//   * blocked-thread hand-off: a std::mutex whose holder was preempted, a slow function-local static, and
//     read() on empty pipes block a kernel thread, and the other tasks keep running (a spare thread takes
//     the core over), under every mechanism;
//   * timers on busy cores: a sleeper whose own worker runs a long task still wakes near its deadline;
//   * per-task C++ exception state: yielding, blocking or being preempted inside a catch block keeps the
//     task's own exception (std::current_exception, throw;);
//   * dl_iterate_phdr callbacks are never entered by two tasks of one worker at once;
//   * this_task::exit_now() ends a task without unwinding.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <link.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "skyloft/skyloft.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using namespace skytest;
using skyloft::Config;
using skyloft::JoinHandle;
using skyloft::Runtime;
using skyloft::SpawnOptions;
namespace this_task = skyloft::this_task;

class SpineTest : public ::testing::TestWithParam<PolicyAndMechanism> {
 protected:
  const std::string& policy() const { return std::get<0>(GetParam()); }
  const std::string& mechanism() const { return std::get<1>(GetParam()); }
  bool signals() const { return mechanism() == "timer" || mechanism() == "dispatcher" || mechanism() == "hybrid"; }
  // Under ThreadSanitizer a signal handler runs late with a copy of the context: signal mechanisms
  // degrade to the flag behaviour (README, "Preemption").
  bool async_preemption() const { return signals() && !kTsan; }
  Config config(std::uint32_t quantum_us = 100) const {
    Config c = make_config(policy());
    c.preempt = mechanism();
    c.quantum_us = quantum_us;
    return c;
  }
  int worker_core(const Runtime& rt, std::size_t i) const { return rt.worker_cores().at(i % rt.num_workers()); }

 private:
  Watchdog watchdog_;
};

std::uint64_t handoffs(const Runtime& rt) { return sum_of(rt.stats(), &skyloft::WorkerStats::handoffs); }

void spin_for(std::chrono::microseconds d) {
  const auto end = Clock::now() + d;
  while (Clock::now() < end) {
  }
}

// Pure computation (no library calls, so an interrupt can always preempt it; most of spin_for's time is
// spent inside libstdc++'s clock, where preemption is deferred).
void compute(int rounds) {
  volatile int sink = 0;
  for (int k = 0; k < rounds; ++k) sink = sink + k;
}

// ------------------------------------------------------------------------------------------------------------
// Blocked-thread hand-off
// ------------------------------------------------------------------------------------------------------------

class HandoffTest : public SpineTest {};

// 16 tasks on the workers hammer one std::mutex with some work inside. Under a signal mechanism a holder
// can be preempted with the lock held, and a task on the same worker then blocks its kernel thread in the
// futex: without the hand-off both would wait forever.
TEST_P(HandoffTest, StdMutexHammeredBySixteenTasksFinishes) {
  Runtime rt(config(50));
  std::mutex m;
  std::uint64_t counter = 0;
  const int per_task = static_cast<int>(scaled(3000, 200));
  rt.block_on([&] {
    std::vector<JoinHandle> hs;
    for (int i = 0; i < 16; ++i) {
      hs.push_back(skyloft::spawn([&] {
        for (int k = 0; k < per_task; ++k) {
          std::lock_guard<std::mutex> g(m);
          ++counter;
          spin_for(std::chrono::microseconds(k % 7 == 0 ? 20 : 1));
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(counter, std::uint64_t{16} * static_cast<std::uint64_t>(per_task));
  std::printf("  hand-offs: %llu\n", static_cast<unsigned long long>(handoffs(rt)));
  EXPECT_TRUE(rt.shutdown().clean());
}

// The initializer of a function-local static runs for a while (long enough to be preempted under a
// signal mechanism); every other task that reaches it waits inside libstdc++'s guard (a futex), which
// blocks its kernel thread.
int slow_static_value() {
  static const int value = [] {
    spin_for(30ms);
    return 42;
  }();
  return value;
}

TEST_P(HandoffTest, SlowFunctionLocalStaticFinishes) {
  Runtime rt(config(50));
  std::atomic<int> sum{0};
  rt.block_on([&] {
    std::vector<JoinHandle> hs;
    for (int i = 0; i < 8; ++i) {
      hs.push_back(skyloft::spawn([&] { sum += slow_static_value(); }, SpawnOptions{0, worker_core(rt, i)}));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(sum.load(), 8 * 42);
  EXPECT_TRUE(rt.shutdown().clean());
}

// Tasks blocked in read() on empty pipes hold every worker's kernel thread; other tasks must keep running
// (a spare thread takes each blocked core over), and the readers finish once the pipes are written.
TEST_P(HandoffTest, ReadOnEmptyPipesDoesNotStopOtherTasks) {
  Runtime rt(config());
  const int readers = static_cast<int>(rt.num_workers()) * 2;
  std::vector<int> fds(static_cast<std::size_t>(readers) * 2);
  for (int i = 0; i < readers; ++i) ASSERT_EQ(pipe(&fds[static_cast<std::size_t>(i) * 2]), 0);
  std::atomic<int> got{0}, started{0};
  std::atomic<std::uint64_t> work_rounds{0};
  bool worker_progress = false;
  rt.block_on([&] {
    std::vector<JoinHandle> hs;
    for (int i = 0; i < readers; ++i) {
      const int fd = fds[static_cast<std::size_t>(i) * 2];
      // Half of them say so (BlockingSection), half are found by the monitor; under ThreadSanitizer only
      // marked sections are handed off (core/handoff.cpp H3), so all of them are marked there.
      const bool marked = kTsan || i % 2 == 0;
      hs.push_back(skyloft::spawn(
          [&, fd, marked] {
            started.fetch_add(1);
            char c = 0;
            ssize_t n;
            if (marked) {
              skyloft::BlockingSection blocking;
              n = read(fd, &c, 1);
            } else {
              n = read(fd, &c, 1);
            }
            if (n == 1 && c == 'x') got.fetch_add(1);
          },
          SpawnOptions{0, worker_core(rt, static_cast<std::size_t>(i))}));
    }
    while (started.load() < readers) this_task::yield();
    // The readers' threads are blocked now. These tasks only run if their cores were handed over.
    JoinHandle worker = skyloft::spawn([&] {
      for (int r = 0; r < 200; ++r) {
        work_rounds.fetch_add(1);
        this_task::sleep_for(100us);
      }
    });
    worker.join();
    worker_progress = work_rounds.load() == 200;
    for (int i = 0; i < readers; ++i) ASSERT_EQ(write(fds[static_cast<std::size_t>(i) * 2 + 1], "x", 1), 1);
    for (auto& h : hs) h.join();
  });
  EXPECT_TRUE(worker_progress);
  EXPECT_EQ(got.load(), readers);
  EXPECT_GE(handoffs(rt), 1u) << "the other task ran although every worker thread was blocked in read()?";
  for (int fd : fds) close(fd);
  EXPECT_TRUE(rt.shutdown().clean());
}

// A short BlockingSection costs nothing visible: no hand-off, the task keeps its worker.
TEST_P(HandoffTest, ShortBlockingSectionsDoNotHandOff) {
  Runtime rt(config());
  rt.block_on([&] {
    for (int i = 0; i < 1000; ++i) {
      skyloft::BlockingSection s;
      (void)getpid();
    }
  });
  EXPECT_EQ(handoffs(rt), 0u);
  EXPECT_TRUE(rt.shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, HandoffTest,
                         ::testing::Combine(::testing::Values("fifo", "rr", "sq"), ::testing::ValuesIn(kMechanisms)),
                         param_name);

// ------------------------------------------------------------------------------------------------------------
// Timers on busy cores
// ------------------------------------------------------------------------------------------------------------

class BusyTimerTest : public SpineTest {};

// The sleeper starts on worker 0, spawns a 100 ms spinner pinned there, and sleeps 2 ms; its timer lives
// on worker 0, which runs the spinner. With another worker idle, that worker fires the timer (every
// mechanism, also none); with every worker busy, the preemption mechanism interrupts the spinner near the
// deadline (signal mechanisms).
void run_sleeper_beside_spinner(Runtime& rt, int core, bool busy_elsewhere, double& late_ms, double& spinner_ms) {
  std::atomic<bool> stop_others{false};
  rt.block_on([&] {
    std::vector<JoinHandle> others;
    if (busy_elsewhere) {
      for (std::size_t i = 0; i < rt.num_workers(); ++i) {
        const int c = rt.worker_cores()[i];
        if (c == core) continue;
        others.push_back(skyloft::spawn(
            [&] {
              while (!stop_others.load(std::memory_order_relaxed)) {
              }
            },
            SpawnOptions{0, c, true}));
      }
    }
    JoinHandle sleeper = skyloft::spawn(
        [&] {
          const auto t0 = Clock::now();
          JoinHandle spinner = skyloft::spawn(
              [&] {
                const auto s0 = Clock::now();
                spin_for(100ms);
                spinner_ms = ms_since(s0);
              },
              SpawnOptions{0, core, true});
          const auto deadline = t0 + 2ms;
          this_task::sleep_for(2ms);
          late_ms = std::chrono::duration<double, std::milli>(Clock::now() - deadline).count();
          stop_others = true;
          spinner.join();
        },
        SpawnOptions{0, core});
    sleeper.join();
    stop_others = true;
    for (auto& h : others) h.join();
  });
}

TEST_P(BusyTimerTest, SleeperWakesWhileItsWorkerRunsALongTaskAndAnotherIsIdle) {
  Runtime rt(config());
  if (rt.num_workers() < 2) GTEST_SKIP() << "needs an idle second worker";
  double late = -1, spun = -1;
  run_sleeper_beside_spinner(rt, rt.worker_cores()[0], false, late, spun);
  std::printf("  sleeper woke %.3f ms after its deadline (spinner ran %.1f ms)\n", late, spun);
  EXPECT_GE(late, 0.0);
  EXPECT_LT(late, kTsan || kAsan ? 60.0 : 30.0) << "the timer waited for the spinner";
  EXPECT_TRUE(rt.shutdown().clean());
}

TEST_P(BusyTimerTest, SleeperWakesWithinAboutAQuantumWhenEveryWorkerIsBusy) {
  if (!async_preemption()) GTEST_SKIP() << "needs asynchronous preemption of code without preempt points";
  Runtime rt(config(100));
  double late = -1, spun = -1;
  run_sleeper_beside_spinner(rt, rt.worker_cores()[0], true, late, spun);
  std::printf("  sleeper woke %.3f ms after its deadline (spinner ran %.1f ms)\n", late, spun);
  EXPECT_GE(late, 0.0);
  EXPECT_LT(late, kAsan ? 60.0 : 30.0) << "the timer waited for the spinner";
  EXPECT_TRUE(rt.shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, BusyTimerTest,
                         ::testing::Combine(::testing::ValuesIn(kPolicies), ::testing::ValuesIn(kMechanisms)),
                         param_name);

// ------------------------------------------------------------------------------------------------------------
// Per-task exception state
// ------------------------------------------------------------------------------------------------------------

class ExceptionTest : public SpineTest {};

struct Tagged {
  int tag;
};

int tag_of_current_exception() {
  std::exception_ptr e = std::current_exception();
  if (!e) return -1;
  try {
    std::rethrow_exception(e);
  } catch (const Tagged& t) {
    return t.tag;
  } catch (...) {
    return -2;
  }
}

// Many tasks, each inside its own catch block, yield and sleep (so they resume on other workers, after
// other tasks threw): each still sees its own exception, and `throw;` rethrows it.
TEST_P(ExceptionTest, YieldAndSleepInsideCatchKeepTheTasksOwnException) {
  Runtime rt(config());
  const int tasks = 16;
  std::atomic<int> wrong{0}, rethrown_ok{0};
  rt.block_on([&] {
    std::vector<JoinHandle> hs;
    for (int i = 0; i < tasks; ++i) {
      hs.push_back(skyloft::spawn([&, i] {
        try {
          throw Tagged{i};
        } catch (const Tagged&) {
          for (int r = 0; r < 20; ++r) {
            if (r % 3 == 0) {
              this_task::sleep_for(50us);
            } else {
              this_task::yield();
            }
            if (tag_of_current_exception() != i) wrong.fetch_add(1);
          }
          try {
            throw;
          } catch (const Tagged& t) {
            if (t.tag == i) rethrown_ok.fetch_add(1);
          }
        }
        if (std::current_exception()) wrong.fetch_add(1);
        if (std::uncaught_exceptions() != 0) wrong.fetch_add(1);
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(rethrown_ok.load(), tasks);
  EXPECT_TRUE(rt.shutdown().clean());
}

// A task preempted inside a catch block (no yields) while another task on the same worker throws and
// catches over and over: the first still sees its own exception afterwards.
TEST_P(ExceptionTest, PreemptedInsideCatchKeepsItsOwnException) {
  if (!async_preemption()) GTEST_SKIP() << "needs asynchronous preemption of code without preempt points";
  Runtime rt(config(50));
  const int core = rt.worker_cores()[0];
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::atomic<std::uint64_t> throws{0};
  rt.block_on([&] {
    JoinHandle holder = skyloft::spawn(
        [&] {
          try {
            throw Tagged{7};
          } catch (const Tagged&) {
            const auto end = Clock::now() + 60ms;
            while (Clock::now() < end) {
              compute(20000);
              if (tag_of_current_exception() != 7) wrong.fetch_add(1);
            }
          }
          stop = true;
        },
        SpawnOptions{0, core, true});
    JoinHandle thrower = skyloft::spawn(
        [&] {
          while (!stop.load(std::memory_order_relaxed)) {
            try {
              throw Tagged{99};
            } catch (const Tagged& t) {
              if (t.tag != 99) wrong.fetch_add(1);
            }
            throws.fetch_add(1, std::memory_order_relaxed);
          }
        },
        SpawnOptions{0, core, true});
    holder.join();
    thrower.join();
  });
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(throws.load(), 0u) << "the thrower never ran beside the holder";
  EXPECT_TRUE(rt.shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, ExceptionTest,
                         ::testing::Combine(::testing::ValuesIn(kPolicies), ::testing::ValuesIn(kMechanisms)),
                         param_name);

// ------------------------------------------------------------------------------------------------------------
// dl_iterate_phdr callbacks, exit without unwinding
// ------------------------------------------------------------------------------------------------------------

class LibcCallbackTest : public SpineTest {};

struct IterateState {
  std::atomic<int> inside[skyloft::kMaxWorkers] = {};
  std::atomic<int> overlaps{0};
  std::atomic<std::uint64_t> calls{0};
};

int slow_callback(dl_phdr_info*, std::size_t, void* data) {
  auto* s = static_cast<IterateState*>(data);
  const int w = this_task::worker_index();
  if (w >= 0 && s->inside[w].fetch_add(1) != 0) s->overlaps.fetch_add(1);
  spin_for(20us);  // long enough to be interrupted, were it allowed
  if (w >= 0) s->inside[w].fetch_sub(1);
  s->calls.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

TEST_P(LibcCallbackTest, DlIteratePhdrCallbacksNeverInterleaveOnAWorker) {
  if (kAsan || kTsan) GTEST_SKIP() << "sanitizer builds keep the sanitizer's own dl_iterate_phdr (no guard)";
  Runtime rt(config(20));
  IterateState state;
  rt.block_on([&] {
    std::vector<JoinHandle> hs;
    for (int i = 0; i < 6; ++i) {
      hs.push_back(skyloft::spawn([&] {
        for (int k = 0; k < 30; ++k) dl_iterate_phdr(&slow_callback, &state);
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(state.overlaps.load(), 0);
  EXPECT_GT(state.calls.load(), 0u);
  EXPECT_TRUE(rt.shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, LibcCallbackTest,
                         ::testing::Combine(::testing::Values("fifo", "rr"), ::testing::ValuesIn(kMechanisms)),
                         param_name);

struct Sentinel {
  std::atomic<int>* destroyed;
  ~Sentinel() { destroyed->fetch_add(1); }
};

TEST(ExitNow, EndsTheTaskWithoutUnwinding) {
  Watchdog watchdog;
  Runtime rt(make_config("fifo"));
  std::atomic<int> destroyed{0}, after{0};
  rt.block_on([&] {
    JoinHandle h = skyloft::spawn([&] {
      Sentinel s{&destroyed};
      this_task::exit_now();
      after.fetch_add(1);  // never reached
    });
    h.join();
  });
  EXPECT_EQ(destroyed.load(), 0) << "exit_now() unwound the stack";
  EXPECT_EQ(after.load(), 0);
  EXPECT_TRUE(rt.shutdown().clean());
}

}  // namespace
