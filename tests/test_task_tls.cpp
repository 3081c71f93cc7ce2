// test_task_tls.cpp - per-task thread-locals (Config::task_tls): thread_local state, errno, exception state
// and glibc's per-thread caches belong to the task across yields, preemption and migration; destructors run
// at the task's exit; the runtime's own per-thread state keeps working beside them.
#include <errno.h>
#include <sched.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace skytest;
using namespace skyloft;

thread_local std::uint64_t tl_counter = 0;
thread_local int tl_initialised = 42;  // from the init image: every task must start with 42
std::atomic<int> g_destroyed{0};
struct CountsDestruction {
  int value = 7;
  ~CountsDestruction() { g_destroyed.fetch_add(1); }
};
thread_local CountsDestruction tl_with_destructor;

Config tls_config(const std::string& policy, const std::string& mechanism) {
  Config c = preempt_config(policy, mechanism, 100);
  c.task_tls = true;
  return c;
}

bool skip_in_sanitizers() { return kAsan || kTsan; }

#define SKIP_IN_SANITIZERS()                                                               \
  if (skip_in_sanitizers()) GTEST_SKIP() << "per-task TLS is refused in sanitizer builds (TaskTls.RefusedUnder"  \
                                            "Sanitizers checks the message)"

TEST(TaskTls, RefusedUnderSanitizersWithAReason) {
  if (!skip_in_sanitizers()) GTEST_SKIP() << "release build: per-task TLS is available";
  Config c = make_config("fifo");
  c.task_tls = true;
  EXPECT_TRUE(throws_config_error([&] { Runtime rt(c); }, {"sanitizer"}));
}

TEST(TaskTls, EnvironmentValueIsChecked) {
  ScopedEnv env("SKYLOFT_TASK_TLS", "yes");
  EXPECT_TRUE(throws_config_error([] { (void)Config::from_env(); }, {"SKYLOFT_TASK_TLS='yes'"}));
  ScopedEnv on("SKYLOFT_TASK_TLS", "1");
  EXPECT_TRUE(Config::from_env().task_tls);
}

class TaskTlsPreempt : public ::testing::TestWithParam<PolicyAndMechanism> {};

// Many tasks on every worker bump their own thread_local in a loop that yields and is preempted; each ends
// with exactly its own count, saw its variable at one address throughout, and started from the init image.
TEST_P(TaskTlsPreempt, ThreadLocalsArePerTaskAcrossPreemptionAndMigration) {
  SKIP_IN_SANITIZERS();
  Watchdog watchdog;
  auto [policy, mechanism] = GetParam();
  Runtime rt(tls_config(policy, mechanism));
  constexpr int kTasks = 64;
  constexpr std::uint64_t kRounds = 20000;
  std::atomic<int> wrong_start{0}, moved_address{0}, wrong_count{0}, wrong_errno{0};
  std::vector<std::uintptr_t> addresses(kTasks);
  std::atomic<int> migrated{0};
  rt.block_on([&] {
    std::vector<JoinHandle> hs;
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(skyloft::spawn([&, i] {
        if (tl_initialised != 42 || tl_counter != 0) wrong_start.fetch_add(1);
        auto* addr = &tl_counter;
        addresses[static_cast<std::size_t>(i)] = reinterpret_cast<std::uintptr_t>(addr);
        int first_worker = this_task::worker_index();
        for (std::uint64_t r = 0; r < kRounds; ++r) {
          ++tl_counter;
          errno = i + 1;
          if (r % 64 == 0) this_task::yield();
          preempt_point();
          if (errno != i + 1) wrong_errno.fetch_add(1);
          if (&tl_counter != addr) moved_address.fetch_add(1);
        }
        if (tl_counter != kRounds) wrong_count.fetch_add(1);
        if (this_task::worker_index() != first_worker) migrated.fetch_add(1);
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(wrong_start.load(), 0) << "a task did not start from the thread-local init image";
  EXPECT_EQ(wrong_count.load(), 0) << "a task's thread_local counter was changed by another task";
  EXPECT_EQ(wrong_errno.load(), 0) << "errno leaked between tasks";
  EXPECT_EQ(moved_address.load(), 0) << "a thread_local moved while its task ran";
  std::set<std::uintptr_t> distinct(addresses.begin(), addresses.end());
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kTasks)) << "two tasks shared a thread_local";
  std::printf("[ info ] %s/%s: %d of %d tasks ended on another worker than they started on\n", policy.c_str(),
              mechanism.c_str(), migrated.load(), kTasks);
  EXPECT_TRUE(rt.shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, TaskTlsPreempt,
                         ::testing::Values(PolicyAndMechanism{"rr", "timer"}, PolicyAndMechanism{"rr", "flag"},
                                           PolicyAndMechanism{"sq", "dispatcher"},
                                           PolicyAndMechanism{"cfs", "hybrid"},
                                           PolicyAndMechanism{"fifo", "none"}),
                         param_name);

TEST(TaskTls, DestructorsRunAtTaskExit) {
  SKIP_IN_SANITIZERS();
  Watchdog watchdog;
  Runtime rt(tls_config("rr", "none"));
  g_destroyed.store(0);
  constexpr int kTasks = 50;
  rt.block_on([&] {
    std::vector<JoinHandle> hs;
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(skyloft::spawn([] {
        tl_with_destructor.value = 9;  // constructs it in this task's block
        this_task::yield();
      }));
    }
    hs.push_back(skyloft::spawn([] { this_task::yield(); }));  // never touches it: nothing to destroy
    hs.push_back(skyloft::spawn([] {
      tl_with_destructor.value = 1;
      this_task::exit();  // unwinds, then the destructors run
    }));
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(g_destroyed.load(), kTasks + 1);
  EXPECT_TRUE(rt.shutdown().clean());
}

// glibc's own per-thread state: malloc's thread cache under preemption, the exception being handled across
// a yield, sched_getcpu, and the stdio lock shared by every task.
TEST(TaskTls, LibcThreadStateUnderPreemption) {
  SKIP_IN_SANITIZERS();
  Watchdog watchdog;
  Runtime rt(tls_config("rr", "timer"));
  constexpr int kTasks = 16;
  std::atomic<int> bad_memory{0}, bad_exception{0}, bad_cpu{0};
  const std::vector<int> cores = allowed_cores();
  rt.block_on([&] {
    std::vector<JoinHandle> hs;
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(skyloft::spawn([&, i] {
        std::vector<std::unique_ptr<char[]>> live(64);
        for (std::size_t r = 0; r < scaled(40000); ++r) {
          auto& slot = live[static_cast<std::size_t>(r) % live.size()];
          if (slot && slot[0] != static_cast<char>(i)) bad_memory.fetch_add(1);
          std::size_t n = 16 + static_cast<std::size_t>((r * 37) % 900);
          slot.reset(new char[n]);
          std::memset(slot.get(), i, n);
        }
        try {
          throw std::runtime_error("task " + std::to_string(i));
        } catch (const std::exception& e) {
          this_task::yield();
          if (std::string(e.what()) != "task " + std::to_string(i)) bad_exception.fetch_add(1);
          if (std::uncaught_exceptions() != 0) bad_exception.fetch_add(1);
        }
        // ctype's tables are thread-locals glibc sets up in each new thread (__ctype_init).
        if (!std::isspace(static_cast<unsigned char>(' ')) || std::toupper('a') != 'A') bad_cpu.fetch_add(1);
        int cpu = sched_getcpu();
        if (std::find(cores.begin(), cores.end(), cpu) == cores.end()) bad_cpu.fetch_add(1);
        char line[64];
        std::snprintf(line, sizeof line, "task %d done\n", i);
        std::fputs(line, stdout);
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(bad_memory.load(), 0);
  EXPECT_EQ(bad_exception.load(), 0);
  EXPECT_EQ(bad_cpu.load(), 0) << "sched_getcpu() returned a core this process may not run on, or ctype failed";
  EXPECT_TRUE(rt.shutdown().clean());
}

// The main thread's own thread-locals are untouched by tasks, and a plain thread's survive a runtime.
TEST(TaskTls, PlainThreadsKeepTheirOwn) {
  SKIP_IN_SANITIZERS();
  Watchdog watchdog;
  tl_counter = 5;
  Runtime rt(tls_config("fifo", "none"));
  rt.block_on([&] {
    auto h = skyloft::spawn([] { tl_counter = 1000; });
    h.join();
  });
  EXPECT_EQ(tl_counter, 5u);
  EXPECT_TRUE(rt.shutdown().clean());
}

}  // namespace
