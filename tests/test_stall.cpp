// test_stall.cpp - the stall watchdog (Config::stall_ms, SKYLOFT_STALL_MS; the monitor in core/sysmon.cpp):
// a runnable task that waits on a worker which makes no scheduling decision for longer than stall_ms is
// reported once on stderr, naming the worker and with the policy's dump(); a long task alone on its core is
// not a stall. And the configuration errors of the monitor's settings.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "skyloft/skyloft.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using namespace skytest;
using skyloft::Runtime;
using skyloft::SpawnOptions;
namespace this_task = skyloft::this_task;

constexpr std::uint32_t kStallMs = 20;
constexpr auto kSpin = 100ms;  // five stall periods

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

void spin_for(std::chrono::nanoseconds d) {
  const auto end = Clock::now() + d;
  while (Clock::now() < end) {
  }
}

skyloft::Config stall_config(const std::string& policy) {
  skyloft::Config c = make_config(policy);
  c.preempt = "none";  // nothing interrupts the spinner: its worker makes no decision while it runs
  c.stall_ms = kStallMs;
  return c;
}

SpawnOptions pinned_to(int core) {
  SpawnOptions o;
  o.core = core;
  o.pin = true;
  return o;
}

// Runs a task on every worker and gives the monitor time to look at them all. The monitor's first look at a
// worker that has not dispatched anything yet misreads how long its first task waited (see
// FreshRuntimeReportsNoStall below), so the tests proper start from a runtime that has run.
void settle(Runtime& rt) {
  std::vector<skyloft::JoinHandle> hs;
  for (int core : rt.worker_cores()) hs.push_back(skyloft::spawn([] {}, pinned_to(core)));
  for (auto& h : hs) h.join();
  std::this_thread::sleep_for(50ms);  // the monitor looks at least every 2 ms, if it gets a CPU
}

// The policies that can pin a task (so no idle worker takes the waiting one away).
class Stall : public ::testing::TestWithParam<std::string> {
 private:
  Watchdog watchdog_;
};

TEST_P(Stall, TaskWaitingBehindASpinnerIsReportedOnce) {
  Runtime rt(stall_config(GetParam()));
  settle(rt);
  const int core = rt.worker_cores().back();
  const int worker = static_cast<int>(rt.worker_cores().size()) - 1;
  std::atomic<bool> spinning{false}, waiter_ran{false};
  skyloft::JoinHandle spinner = skyloft::spawn(
      [&] {
        spinning = true;
        spin_for(kSpin);
      },
      pinned_to(core));
  ASSERT_TRUE(thread_wait_until([&] { return spinning.load(); }));
  // Captured only from here: on a loaded machine the worker's thread itself may wait for a CPU longer
  // than stall_ms before it dispatches the spinner, which the watchdog rightly reports too.
  ::testing::internal::CaptureStderr();
  skyloft::JoinHandle waiter = skyloft::spawn([&] { waiter_ran = true; }, pinned_to(core));
  spinner.join();
  waiter.join();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(waiter_ran.load());
  // One stall, one report. A hand-off (the monitor may take a worker whose thread it finds asleep in the
  // kernel, as under a loaded machine's page faults) ends the episode early and may start another.
  const std::uint64_t handoffs = rt.stats()[static_cast<std::size_t>(worker)].handoffs;
  EXPECT_GE(count_of(err, "skyloft: stall:"), 1u) << err;
  EXPECT_LE(count_of(err, "skyloft: stall:"), 1u + handoffs) << err << "hand-offs: " << handoffs;
  EXPECT_NE(err.find("worker " + std::to_string(worker) + " (core " + std::to_string(core) + ")"), std::string::npos)
      << err;
  EXPECT_NE(err.find("stall_ms " + std::to_string(kStallMs)), std::string::npos) << err;
  // The policy's dump() follows, with the stalled worker's queue.
  EXPECT_NE(err.find(GetParam() + " queue " + std::to_string(worker)), std::string::npos) << err;
  EXPECT_TRUE(rt.shutdown().clean());
}

TEST_P(Stall, LongTaskAloneIsNotAStall) {
  Runtime rt(stall_config(GetParam()));
  settle(rt);
  const int core = rt.worker_cores().front();
  // A task blocked on the spinner's worker is not runnable: it waits for a semaphore, not for the core.
  skyloft::Semaphore gate(0);
  std::atomic<bool> blocking{false}, spinning{false};
  skyloft::JoinHandle blocked = skyloft::spawn(
      [&] {
        blocking = true;
        gate.acquire();
      },
      pinned_to(core));
  ASSERT_TRUE(thread_wait_until([&] { return blocking.load(); }));
  skyloft::JoinHandle spinner = skyloft::spawn(
      [&] {
        spinning = true;
        spin_for(kSpin);
      },
      pinned_to(core));
  ASSERT_TRUE(thread_wait_until([&] { return spinning.load(); }));
  // From here the spinner is alone with a blocked task (see TaskWaitingBehindASpinner on why only now).
  ::testing::internal::CaptureStderr();
  spinner.join();
  const std::string err = ::testing::internal::GetCapturedStderr();
  gate.release();
  blocked.join();
  EXPECT_EQ(count_of(err, "stall"), 0u) << err << "hand-offs: " << sum_of(rt.stats(), &skyloft::WorkerStats::handoffs);
  EXPECT_TRUE(rt.shutdown().clean());
}

// Disabled until the monitor's first look is fixed (core/sysmon.cpp: Sysmon::ProcWatch starts with
// progress 0 and since 0, so the first check of a worker that has tasks queued but has not dispatched any
// yet finds "no progress since time 0" and reports a stall of now_ns() milliseconds at once). The fix:
// start every ProcWatch::since at the monitor's start (or its first look).
TEST_P(Stall, FreshRuntimeReportsNoStall) {
  skyloft::Config c = stall_config(GetParam());
  c.stall_ms = 500;  // far above any delay a loaded machine adds; the misreading is of hours
  for (int round = 0; round < 20; ++round) {
    Runtime rt(c);
    ::testing::internal::CaptureStderr();
    std::vector<skyloft::JoinHandle> hs;
    for (int core : rt.worker_cores()) {
      for (int i = 0; i < 4; ++i) hs.push_back(skyloft::spawn([] { spin_for(1ms); }, pinned_to(core)));
    }
    for (auto& h : hs) h.join();
    const std::string err = ::testing::internal::GetCapturedStderr();
    ASSERT_EQ(count_of(err, "stall"), 0u) << "round " << round << ":\n" << err;
  }
}

INSTANTIATE_TEST_SUITE_P(PinningPolicies, Stall, ::testing::Values("fifo", "rr", "cfs", "eevdf"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(StallWatchdog, OffByDefault) {
  EXPECT_EQ(skyloft::Config{}.stall_ms, 0u);
  Runtime rt(make_config("fifo"));
  const int core = rt.worker_cores().front();
  ::testing::internal::CaptureStderr();
  std::atomic<bool> spinning{false};
  skyloft::JoinHandle spinner = skyloft::spawn(
      [&] {
        spinning = true;
        spin_for(50ms);
      },
      pinned_to(core));
  ASSERT_TRUE(thread_wait_until([&] { return spinning.load(); }));
  skyloft::spawn([] {}, pinned_to(core)).join();
  spinner.join();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(count_of(err, "stall"), 0u) << err;
}

TEST(StallWatchdog, EnvironmentSetsIt) {
  ScopedEnv env("SKYLOFT_STALL_MS", "20");
  EXPECT_EQ(skyloft::Config::from_env().stall_ms, 20u);
}

TEST(MonitorConfig, AbsurdValuesAreRejected) {
  skyloft::Config c = make_config("fifo");
  c.stall_ms = 3'600'001;  // more than an hour
  EXPECT_CONFIG_ERROR(Runtime rt(c), "stall_ms 3600001 is out of range");
  c = make_config("fifo");
  c.handoff_us = 1'000'001;  // more than a second
  EXPECT_CONFIG_ERROR(Runtime rt(c), "handoff_us 1000001 is out of range");
  for (int sig : {0, -1, 9, 19, 11, 7, 65}) {  // none, none, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, past SIGRTMAX
    c = make_config("fifo");
    c.preempt_signal = sig;
    EXPECT_CONFIG_ERROR(Runtime rt(c), "preempt_signal " + std::to_string(sig) + " is not allowed")
        << "signal " << sig;
  }
  // The limits themselves are accepted, and 0 turns each off.
  c = make_config("fifo");
  c.stall_ms = 3'600'000;
  c.handoff_us = 0;
  { Runtime rt(c); }
  c.stall_ms = 0;
  c.handoff_us = 1'000'000;
  { Runtime rt(c); }
  EXPECT_EQ(Runtime::current(), nullptr);
}

TEST(MonitorConfig, MalformedEnvironmentIsRejected) {
  for (const char* bad : {"soon", "-1", "20ms", ""}) {
    ScopedEnv env("SKYLOFT_STALL_MS", bad);
    EXPECT_CONFIG_ERROR(skyloft::Config::from_env(), "SKYLOFT_STALL_MS") << "value '" << bad << "'";
  }
  {
    ScopedEnv env("SKYLOFT_STALL_MS", "3600001");
    EXPECT_CONFIG_ERROR(skyloft::Config::from_env(), "SKYLOFT_STALL_MS=3600001 is out of range");
  }
  {
    ScopedEnv env("SKYLOFT_HANDOFF_US", "1000001");
    EXPECT_CONFIG_ERROR(skyloft::Config::from_env(), "SKYLOFT_HANDOFF_US=1000001 is out of range");
  }
  {
    ScopedEnv env("SKYLOFT_HANDOFF_US", "0x10");
    EXPECT_CONFIG_ERROR(skyloft::Config::from_env(), "SKYLOFT_HANDOFF_US='0x10' is not a number");
  }
  {
    ScopedEnv env("SKYLOFT_PREEMPT_SIGNAL", "65");
    EXPECT_CONFIG_ERROR(skyloft::Config::from_env(), "SKYLOFT_PREEMPT_SIGNAL", "65");
  }
  {
    ScopedEnv env("SKYLOFT_PREEMPT_SIGNAL", "SIGBOGUS");  // names are accepted (test_preempt_safety); not this one
    EXPECT_CONFIG_ERROR(skyloft::Config::from_env(), "SKYLOFT_PREEMPT_SIGNAL", "SIGBOGUS");
  }
  ScopedEnv handoff("SKYLOFT_HANDOFF_US", "250");
  ScopedEnv signal("SKYLOFT_PREEMPT_SIGNAL", "40");
  const skyloft::Config c = skyloft::Config::from_env();
  EXPECT_EQ(c.handoff_us, 250u);
  EXPECT_EQ(c.preempt_signal, 40);
}

// W2 (core/sysmon.cpp): a runnable task that waits on a worker which takes none of it for handoff_us gets a
// parked peer woken, which steals it. Here worker 0 runs a task without preemption and the waiter is woken
// onto worker 0's queue by that task itself, which wakes no one else while worker 1 searches; worker 1
// then parks (spin_us 0). Without W2 the waiter would run only when the spinner ends.
TEST(WorkConservation, TaskQueuedBehindALongTaskIsStolenByAParkedPeer) {
  Watchdog watchdog;
  skyloft::Config c = make_config("fifo");
  c.preempt = "none";
  c.spin_us = 0;
  Runtime rt(c);
  if (rt.num_workers() < 2) GTEST_SKIP() << "needs 2 workers";
  settle(rt);
  const int core0 = rt.worker_cores().front();
  SpawnOptions on0;
  on0.core = core0;
  skyloft::Semaphore gate(0);
  std::atomic<bool> waiter_blocked{false}, spinner_done{false}, waiter_ran_early{false};
  skyloft::JoinHandle waiter = skyloft::spawn(
      [&] {
        waiter_blocked = true;
        gate.acquire();
        waiter_ran_early = !spinner_done.load();
      },
      on0);
  ASSERT_TRUE(thread_wait_until([&] { return waiter_blocked.load(); }));
  std::this_thread::sleep_for(5ms);  // the waiter is parked on the semaphore
  skyloft::JoinHandle spinner = skyloft::spawn(
      [&] {
        gate.release();  // wakes the waiter onto this worker's queue
        spin_for(300ms);
        spinner_done = true;
      },
      on0);
  spinner.join();
  waiter.join();
  EXPECT_TRUE(waiter_ran_early.load()) << "the waiter waited for the 300 ms spinner instead of being stolen";
  EXPECT_TRUE(rt.shutdown().clean());
}

}  // namespace
