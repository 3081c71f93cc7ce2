// test_preempt_safety.cpp - where a task may and may not be preempted asynchronously, and that it still is
// within a few quanta whatever code it runs:
//   - a library dlopen'ed after start and named in no_preempt_libs defers preemption; the main program and
//     an unnamed library do not;
//   - no_preempt_libs / SKYLOFT_NO_PREEMPT_LIBS and the preemption signal are validated with precise errors;
//   - preemption works with SIGUSR2; signals of that number the runtime did not send reach the program's
//     handler, whether installed before the runtime started or after (sigaction/signal are recorded);
//   - the preemption chain's stack use is measured (a painted stack) and fits the safe-point reserve; a task
//     running on a stack that is not its own (ucontext) is never preempted;
//   - a newly contended worker is preempted within a few quanta;
//   - a task looping on snprintf/malloc does not starve a computing task on its worker (every signal
//     mechanism).
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
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

#include "skyloft/preempt.hpp"
#include "skyloft/skyloft.hpp"
#include "test_util.hpp"

namespace skyloft {
std::size_t preempt_stack_need() noexcept;  // internal (src/preempt/safe_point.hpp)
}

namespace {

using namespace std::chrono_literals;
using namespace skytest;
using skyloft::Config;
using skyloft::JoinHandle;
using skyloft::Runtime;
using skyloft::WorkerStats;
namespace this_task = skyloft::this_task;


// Under ThreadSanitizer every mechanism preempts only at preempt points (README, "Preemption").
#define SKIP_WITHOUT_ASYNC_PREEMPTION() \
  if (kTsan) GTEST_SKIP() << "ThreadSanitizer build: signal mechanisms preempt only at preempt points"

#define SINGLE_WORKER_RUNTIME(rt, cfg)          \
  auto rt = make_single_worker_runtime(cfg);   \
  ASSERT_TRUE(rt) << "cannot make a one-worker runtime"

__attribute__((noinline)) std::uint64_t spin_in_main_program(const volatile bool* stop) {
  std::uint64_t n = 0;
  while (!*stop) {
    ++n;
    __builtin_ia32_pause();
  }
  return n;
}

using SpinFn = std::uint64_t (*)(const volatile bool*);

struct SpinOutcome {
  int other_progress = -1;         // runs of the waiting task while the spinner spun
  std::uint64_t deferred = 0;      // interrupts deferred meanwhile
  std::uint64_t preemptions = 0;
  std::uint64_t escapes = 0;       // hand-offs by the spinner's handler (core/handoff.cpp H6)
};

// On a one-worker runtime: a task that yields in a loop waits for the core while another runs spin(stop)
// for `spin_for` (stopped by a plain thread). Counts how often the waiting task ran meanwhile.
SpinOutcome spin_beside_waiter(Runtime& rt, SpinFn spin, std::chrono::milliseconds spin_for) {
  std::atomic<bool> waiter_ready{false}, spinning{false}, done{false}, stop{false};
  std::atomic<int> progress{0}, during{-1};
  const auto before = worker_stats(rt);
  JoinHandle waiter = skyloft::spawn([&] {
    waiter_ready = true;
    while (!done.load()) {
      progress.fetch_add(1);
      this_task::yield();
    }
  });
  JoinHandle spinner = skyloft::spawn([&] {
    while (!waiter_ready.load()) this_task::yield();
    const int p0 = progress.load();
    spinning = true;
    spin(reinterpret_cast<const volatile bool*>(&stop));
    during = progress.load() - p0;
    done = true;
  });
  EXPECT_TRUE(thread_wait_until([&] { return spinning.load(); }));
  std::this_thread::sleep_for(spin_for);
  stop = true;
  spinner.join();
  waiter.join();
  const auto after = worker_stats(rt);
  return SpinOutcome{during.load(), after.preempt_deferred - before.preempt_deferred,
                     after.preemptions - before.preemptions, after.escapes - before.escapes};
}

class MechanismTest : public ::testing::TestWithParam<std::string> {
 protected:
  const std::string& mechanism() const { return GetParam(); }

 private:
  Watchdog watchdog_;
};

std::string mechanism_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

// ------------------------------------------------------------------------------------------------------------
// 1. Libraries loaded with dlopen after start
// ------------------------------------------------------------------------------------------------------------

class DlopenTest : public MechanismTest {};

SpinFn load_spin_lib(void** handle) {
  *handle = dlopen(SKYTEST_SPIN_LIB, RTLD_NOW | RTLD_LOCAL);
  if (*handle == nullptr) return nullptr;
  return reinterpret_cast<SpinFn>(dlsym(*handle, "skytest_spin_in_lib"));
}

TEST_P(DlopenTest, NamedLibraryLoadedAfterStartDefersPreemption) {
  SKIP_WITHOUT_ASYNC_PREEMPTION();
  Config c = preempt_config("fifo", mechanism(), 100);
  c.no_preempt_libs = {"libskytest_spin"};
  SINGLE_WORKER_RUNTIME(rt, c);
  void* handle = nullptr;
  SpinFn in_lib = load_spin_lib(&handle);  // after start: the wrapper refreshes the unsafe table
  ASSERT_NE(in_lib, nullptr) << dlerror();
  const SpinOutcome lib = spin_beside_waiter(*rt, in_lib, 60ms);
  EXPECT_GE(lib.deferred, 1u) << "no interrupt was deferred while the waiting task wanted the core";
  // Not interrupted, but not starving the waiter either: the spinner's handler escaped (H6) and a spare
  // thread ran the waiting task. An escape follows only failed quick retries of unsafe-PC deferrals, so it
  // also shows that the library's code was classified unsafe (a redirect would have preempted it instead).
  // (Without the hand-off the waiter does not run at all: EnvNamedLibraryLoadedBeforeStartDefersPreemption.)
  EXPECT_GE(lib.escapes, 1u) << "the spinner never escaped from the library while a task waited";
  EXPECT_GT(lib.other_progress, 0) << "the waiting task did not run after the escape";
  // The same contest in the main program: preempted.
  const SpinOutcome main = spin_beside_waiter(*rt, &spin_in_main_program, 60ms);
  EXPECT_GT(main.other_progress, 0) << "a task spinning in the main program was not preempted";
  EXPECT_GE(main.preemptions, 1u);
  EXPECT_TRUE(rt->shutdown().clean());
  dlclose(handle);
}

TEST_P(DlopenTest, UnnamedLibraryLoadedAfterStartIsPreempted) {
  SKIP_WITHOUT_ASYNC_PREEMPTION();
  SINGLE_WORKER_RUNTIME(rt, preempt_config("fifo", mechanism(), 100));
  void* handle = nullptr;
  SpinFn in_lib = load_spin_lib(&handle);
  ASSERT_NE(in_lib, nullptr) << dlerror();
  const SpinOutcome lib = spin_beside_waiter(*rt, in_lib, 60ms);
  EXPECT_GT(lib.other_progress, 0) << "a library nobody named unsafe was treated as unsafe";
  EXPECT_TRUE(rt->shutdown().clean());
  // dlclose refreshes the table too; a later runtime still works.
  EXPECT_EQ(dlclose(handle), 0);
}

// The user names the library through the environment, and loads it before starting the runtime.
TEST_P(DlopenTest, EnvNamedLibraryLoadedBeforeStartDefersPreemption) {
  SKIP_WITHOUT_ASYNC_PREEMPTION();
  void* handle = nullptr;
  SpinFn in_lib = load_spin_lib(&handle);
  ASSERT_NE(in_lib, nullptr) << dlerror();
  ScopedEnv env("SKYLOFT_NO_PREEMPT_LIBS", std::string("libjemalloc.so:libskytest_spin"));
  Config c = Config::from_env();
  c.preempt = mechanism();
  c.quantum_us = 100;
  c.handoff_us = 0;  // no hand-off, so no escape (H6) either: the waiter cannot run while the spinner spins
  SINGLE_WORKER_RUNTIME(rt, c);
  const SpinOutcome lib = spin_beside_waiter(*rt, in_lib, 60ms);
  EXPECT_EQ(lib.other_progress, 0);
  EXPECT_GE(lib.deferred, 1u);
  EXPECT_EQ(lib.escapes, 0u);
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, DlopenTest, ::testing::ValuesIn(kSignalMechanisms), mechanism_name);

// ------------------------------------------------------------------------------------------------------------
// 2 and 3. Configuration: no_preempt_libs and the preemption signal
// ------------------------------------------------------------------------------------------------------------

class SafetyConfig : public ::testing::Test {
 private:
  Watchdog watchdog_;
};

TEST_F(SafetyConfig, NoPreemptLibsFromEnv) {
  {
    ScopedEnv e("SKYLOFT_NO_PREEMPT_LIBS", std::string(" libjemalloc.so : libtcmalloc"));
    const Config c = Config::from_env();
    EXPECT_EQ(c.no_preempt_libs, (std::vector<std::string>{"libjemalloc.so", "libtcmalloc"}));
  }
  {
    ScopedEnv e("SKYLOFT_NO_PREEMPT_LIBS", std::nullopt);
    EXPECT_TRUE(Config::from_env().no_preempt_libs.empty());
  }
}

TEST_F(SafetyConfig, NoPreemptLibsEnvErrors) {
  {
    ScopedEnv e("SKYLOFT_NO_PREEMPT_LIBS", std::string(""));
    EXPECT_CONFIG_ERROR(Config::from_env(), "set but empty");
  }
  {
    ScopedEnv e("SKYLOFT_NO_PREEMPT_LIBS", std::string("libjemalloc.so::libtcmalloc"));
    EXPECT_CONFIG_ERROR(Config::from_env(), "element 2 is empty");
  }
  {
    ScopedEnv e("SKYLOFT_NO_PREEMPT_LIBS", std::string("libjemalloc.so:"));
    EXPECT_CONFIG_ERROR(Config::from_env(), "element 2 is empty");
  }
  {
    ScopedEnv e("SKYLOFT_NO_PREEMPT_LIBS", std::string(":libjemalloc.so"));
    EXPECT_CONFIG_ERROR(Config::from_env(), "element 1 is empty");
  }
  {
    ScopedEnv e("SKYLOFT_NO_PREEMPT_LIBS", std::string("/usr/lib/libjemalloc.so.2"));
    EXPECT_CONFIG_ERROR(Config::from_env(), "is a path");
  }
}

TEST_F(SafetyConfig, NoPreemptLibsFieldErrors) {
  Config c = make_config("fifo");
  c.no_preempt_libs = {"libjemalloc.so", ""};
  EXPECT_CONFIG_ERROR(Runtime rt(c), "no_preempt_libs[1] is empty");
  c.no_preempt_libs = {"lib/libjemalloc.so"};
  EXPECT_CONFIG_ERROR(Runtime rt(c), "no_preempt_libs[0]", "is a path");
  // The failed starts leave nothing behind.
  c.no_preempt_libs = {"libjemalloc.so"};
  Runtime rt(c);
  std::atomic<bool> ran{false};
  rt.block_on([&] { ran = true; });
  EXPECT_TRUE(ran.load());
}

TEST_F(SafetyConfig, DisallowedSignalsAreErrors) {
  for (int bad : {0, SIGKILL, SIGSEGV, SIGINT, SIGALRM, SIGPROF, SIGRTMIN - 1, SIGRTMAX + 1, -3}) {
    Config c = make_config("fifo");
    c.preempt_signal = bad;
    EXPECT_CONFIG_ERROR(Runtime rt(c), "SIGURG") << bad;
    EXPECT_CONFIG_ERROR(Runtime rt(c), "SIGRTMIN..SIGRTMAX") << bad;
    EXPECT_CONFIG_ERROR(Runtime rt(c), std::to_string(bad)) << bad;
  }
}

TEST_F(SafetyConfig, SignalFromEnvByNumberOrName) {
  const std::pair<const char*, int> cases[] = {{"12", SIGUSR2},        {"SIGUSR1", SIGUSR1},
                                               {"USR2", SIGUSR2},      {"URG", SIGURG},
                                               {"SIGRTMIN", SIGRTMIN}, {"SIGRTMIN+3", SIGRTMIN + 3},
                                               {"RTMAX-1", SIGRTMAX - 1}};
  for (const auto& [text, sig] : cases) {
    ScopedEnv e("SKYLOFT_PREEMPT_SIGNAL", std::string(text));
    EXPECT_EQ(Config::from_env().preempt_signal, sig) << text;
  }
  for (const char* bad : {"", "USR3", "SIGRTMIN+", "RTMIN-2", "SIGRTMAX+1x", "65"}) {
    ScopedEnv e("SKYLOFT_PREEMPT_SIGNAL", std::string(bad));
    EXPECT_CONFIG_ERROR(Config::from_env(), "SKYLOFT_PREEMPT_SIGNAL") << "'" << bad << "'";
  }
}

TEST_F(SafetyConfig, SignalMustMatchAnEarlierRuntime) {
  {
    Config c = preempt_config("fifo", "timer", 100);
    c.preempt_signal = SIGUSR2;
    Runtime rt(c);
    rt.block_on([] {});
  }
  Config c = preempt_config("fifo", "timer", 100);
  c.preempt_signal = SIGURG;
  EXPECT_CONFIG_ERROR(Runtime rt(c), "earlier runtime");
  EXPECT_CONFIG_ERROR(Runtime rt(c), "signal 12");
  c.preempt_signal = SIGUSR2;  // the same one is fine
  Runtime rt(c);
  rt.block_on([] {});
}

// ------------------------------------------------------------------------------------------------------------
// 3. Preemption with SIGUSR2; foreign signals reach the program's handler
// ------------------------------------------------------------------------------------------------------------

class SignalTest : public MechanismTest {};

std::atomic<int> g_program_handler_calls{0};
std::atomic<int> g_program_handler_signo{0};
std::atomic<int> g_late_handler_calls{0};
void program_handler(int sig) {
  g_program_handler_calls.fetch_add(1);
  g_program_handler_signo.store(sig);
}
void late_handler(int, siginfo_t*, void*) { g_late_handler_calls.fetch_add(1); }

TEST_P(SignalTest, PreemptsWithSigusr2) {
  SKIP_WITHOUT_ASYNC_PREEMPTION();
  Config c = preempt_config("fifo", mechanism(), 100);
  c.preempt_signal = SIGUSR2;
  SINGLE_WORKER_RUNTIME(rt, c);
  const SpinOutcome main = spin_beside_waiter(*rt, &spin_in_main_program, 60ms);
  EXPECT_GT(main.other_progress, 0) << "no preemption with SIGUSR2";
  EXPECT_GE(main.preemptions, 1u);
  EXPECT_TRUE(rt->shutdown().clean());
}

TEST_P(SignalTest, ForeignSignalsReachTheHandlerInstalledBefore) {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = &program_handler;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &sa, nullptr), 0);
  Config c = preempt_config("fifo", mechanism(), 100);
  c.preempt_signal = SIGUSR2;
  SINGLE_WORKER_RUNTIME(rt, c);
  g_program_handler_calls = 0;
  // A process-directed signal (it may land on any thread, a worker included) and a thread-directed one
  // raised by a task on a worker thread.
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  EXPECT_TRUE(thread_wait_until([] { return g_program_handler_calls.load() == 1; }));
  rt->block_on([] { raise(SIGUSR2); });
  EXPECT_TRUE(thread_wait_until([] { return g_program_handler_calls.load() == 2; }));
  EXPECT_EQ(g_program_handler_signo.load(), SIGUSR2);
  // The runtime's own signals never reach it.
  if (!kTsan) {
    const SpinOutcome main = spin_beside_waiter(*rt, &spin_in_main_program, 60ms);
    EXPECT_GE(main.preemptions, 1u);
  }
  EXPECT_EQ(g_program_handler_calls.load(), 2);
  EXPECT_TRUE(rt->shutdown().clean());
}

// A handler the program installs after start becomes the forward target; ours stays installed.
TEST_P(SignalTest, HandlerInstalledAfterStartIsRecordedNotInstalled) {
  Config c = preempt_config("fifo", mechanism(), 100);
  c.preempt_signal = SIGUSR2;
  SINGLE_WORKER_RUNTIME(rt, c);
  struct sigaction sa, old;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &late_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &sa, &old), 0);
  EXPECT_FALSE(old.sa_flags & SA_SIGINFO) << "the old action should be the program's (SIG_DFL), not the runtime's";
  EXPECT_EQ(old.sa_handler, SIG_DFL);
  struct sigaction now;
  ASSERT_EQ(sigaction(SIGUSR2, nullptr, &now), 0);
  EXPECT_EQ(now.sa_sigaction, &late_handler) << "querying shows the program's own handler";
  g_late_handler_calls = 0;
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  EXPECT_TRUE(thread_wait_until([] { return g_late_handler_calls.load() == 1; }));
  if (!kTsan) {
    const SpinOutcome main = spin_beside_waiter(*rt, &spin_in_main_program, 60ms);
    EXPECT_GT(main.other_progress, 0) << "the program's sigaction() replaced the runtime's handler";
  }
  // signal() too; it returns the previous program handler.
  g_program_handler_calls = 0;
  EXPECT_EQ(reinterpret_cast<void*>(signal(SIGUSR2, &program_handler)), reinterpret_cast<void*>(&late_handler));
  EXPECT_EQ(signal(SIGUSR2, &program_handler), &program_handler);
  rt->block_on([] { raise(SIGUSR2); });
  EXPECT_TRUE(thread_wait_until([] { return g_program_handler_calls.load() == 1; }));
  EXPECT_EQ(g_late_handler_calls.load(), 1);
  if (!kTsan) {
    const SpinOutcome main = spin_beside_waiter(*rt, &spin_in_main_program, 60ms);
    EXPECT_GT(main.other_progress, 0) << "signal() replaced the runtime's handler";
  }
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, SignalTest, ::testing::ValuesIn(kSignalMechanisms), mechanism_name);

// ------------------------------------------------------------------------------------------------------------
// 4. Stack room and foreign stacks
// ------------------------------------------------------------------------------------------------------------

constexpr unsigned char kPaint = 0xa5;

// Paints [sp - depth, sp - 256) with kPaint, spins (no stack use) until *stop, then returns how many bytes
// below the SP at the spin were overwritten (0: none). Everything between painting and scanning is inline
// assembly, so only the preemption chain can touch the painted bytes.
__attribute__((noinline)) std::size_t paint_spin_measure(const volatile bool* stop, std::size_t depth) {
  std::uintptr_t sp;
  asm volatile("movq %%rsp, %0" : "=r"(sp));
  unsigned char* lo = reinterpret_cast<unsigned char*>(sp - depth);
  std::size_t len = depth - 256;
  {
    unsigned char* d = lo;
    std::size_t n = len;
    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(kPaint) : "memory");
  }
  asm volatile(
      "1: pause\n\t"
      "cmpb $0, (%0)\n\t"
      "je 1b\n\t" ::"r"(stop)
      : "cc", "memory");
  unsigned char* p = lo;
  std::size_t n = len;
  asm volatile("repe scasb" : "+D"(p), "+c"(n) : "a"(kPaint) : "cc", "memory");
  // p is one past the first byte that differs (or the end); the deepest write is at that byte.
  if (p == lo + len && p[-1] == kPaint) return 0;
  return static_cast<std::size_t>(reinterpret_cast<unsigned char*>(sp) - (p - 1));
}

class StackRoom : public ::testing::TestWithParam<PolicyAndMechanism> {
 private:
  Watchdog watchdog_;
};

TEST_P(StackRoom, MeasurePreemptionChainDepth) {
  SKIP_WITHOUT_ASYNC_PREEMPTION();
  const auto& [policy, mechanism] = GetParam();
  SINGLE_WORKER_RUNTIME(rt, preempt_config(policy, mechanism, 20));
  const std::size_t depth = 96 * 1024;
  const std::uint64_t target = scaled(1000, 300);
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> deepest{0};
  std::atomic<int> running{0};
  auto body = [&] {
    running.fetch_add(1);
    const std::size_t d = paint_spin_measure(reinterpret_cast<const volatile bool*>(&stop), depth);
    std::size_t cur = deepest.load();
    while (d > cur && !deepest.compare_exchange_weak(cur, d)) {
    }
  };
  skyloft::SpawnOptions opts;
  opts.stack_size = 256 * 1024;
  const auto before = worker_stats(*rt);
  JoinHandle a = skyloft::spawn(body, opts);
  JoinHandle b = skyloft::spawn(body, opts);
  const bool enough = thread_wait_until([&] { return worker_stats(*rt).preemptions - before.preemptions >= target; },
                                        slack() * 2);
  stop = true;
  a.join();
  b.join();
  EXPECT_TRUE(enough) << "only " << worker_stats(*rt).preemptions - before.preemptions << " preemptions";
  const std::size_t measured = deepest.load();
  const std::size_t need = skyloft::preempt_stack_need();
  std::printf("preemption chain: deepest write %zu bytes below the interrupted SP (%s, %s, %s, %llu preemptions); "
              "the safe point reserves %zu\n",
              measured, policy.c_str(), mechanism.c_str(), kAsan ? "ASan" : "no ASan",
              static_cast<unsigned long long>(worker_stats(*rt).preemptions - before.preemptions), need);
  RecordProperty("chain_bytes", static_cast<int>(measured));
  EXPECT_GT(measured, 128u) << "the paint was never touched: nothing measured";
  EXPECT_LT(measured, depth - 256) << "the chain went past the painted region";
  // One chain measured ~2.9 KiB (release) and ~3.1-3.5 KiB (ASan) with the XSAVE area; under ASan an
  // occasional second redirect still nests on top (each level checks its own room), up to ~5.6 KiB in all.
  EXPECT_LE(measured, need) << "the preemption chain used more stack than the safe point reserves";
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, StackRoom,
                         ::testing::Combine(::testing::Values("fifo", "rr", "cfs"), ::testing::Values("timer", "dispatcher")),
                         [](const ::testing::TestParamInfo<PolicyAndMechanism>& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param);
                         });

// A task that switched to a stack of its own making (ucontext) is never preempted there.
class ForeignStackTest : public MechanismTest {};

struct UserStackRun {
  ucontext_t task_ctx, user_ctx;
  const volatile bool* stop = nullptr;
};
UserStackRun* g_user_run = nullptr;
void on_user_stack() {
  spin_in_main_program(g_user_run->stop);
  swapcontext(&g_user_run->user_ctx, &g_user_run->task_ctx);
}

TEST_P(ForeignStackTest, TaskOnUcontextStackIsNotPreempted) {
  SKIP_WITHOUT_ASYNC_PREEMPTION();
  Config c = preempt_config("fifo", mechanism(), 100);
  // No hand-off, so no escape (handoff.cpp H6): under ASan the loop's PC is often in the sanitizer's
  // runtime, which counts as unpreemptible code, and an escape would let the waiter run on a spare.
  c.handoff_us = 0;
  SINGLE_WORKER_RUNTIME(rt, c);
  std::vector<char> user_stack(256 * 1024);
  UserStackRun run;
  g_user_run = &run;
  // The real run: the spinner switches to the user stack and spins there.
  std::atomic<bool> waiter_ready{false}, spinning{false}, done{false}, stop{false};
  std::atomic<int> progress{0}, during{-1};
  const auto before = worker_stats(*rt);
  JoinHandle waiter = skyloft::spawn([&] {
    waiter_ready = true;
    while (!done.load()) {
      progress.fetch_add(1);
      this_task::yield();
    }
  });
  JoinHandle spinner = skyloft::spawn([&] {
    while (!waiter_ready.load()) this_task::yield();
    run.stop = reinterpret_cast<const volatile bool*>(&stop);
    getcontext(&run.user_ctx);
    run.user_ctx.uc_stack.ss_sp = user_stack.data();
    run.user_ctx.uc_stack.ss_size = user_stack.size();
    run.user_ctx.uc_link = nullptr;
    makecontext(&run.user_ctx, &on_user_stack, 0);
    const int p0 = progress.load();
    spinning = true;
    swapcontext(&run.task_ctx, &run.user_ctx);
    during = progress.load() - p0;
    done = true;
  });
  ASSERT_TRUE(thread_wait_until([&] { return spinning.load(); }));
  std::this_thread::sleep_for(60ms);
  stop = true;
  spinner.join();
  waiter.join();
  const auto after = worker_stats(*rt);
  EXPECT_EQ(during.load(), 0) << "the task was preempted while on a stack that is not its own";
  EXPECT_GE(after.preempt_deferred - before.preempt_deferred, 1u);
  // Back on its own stack, it is preempted as usual.
  const SpinOutcome main = spin_beside_waiter(*rt, &spin_in_main_program, 60ms);
  EXPECT_GT(main.other_progress, 0);
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, ForeignStackTest, ::testing::Values("timer", "dispatcher"), mechanism_name);

// ------------------------------------------------------------------------------------------------------------
// 5. A newly contended worker is preempted within a few quanta
// ------------------------------------------------------------------------------------------------------------

class NewlyContendedTest : public MechanismTest {};

TEST_P(NewlyContendedTest, FirstPreemptionWithinAFewQuanta) {
  SKIP_WITHOUT_ASYNC_PREEMPTION();
  const std::uint32_t quantum_us = 2000;
  // rr: fifo looks at tasks handed in from outside (its inject list) only every 61st pick, behind the
  // preempted task that went back to its ring, which would measure the policy, not the preemption.
  SINGLE_WORKER_RUNTIME(rt, preempt_config("rr", mechanism(), quantum_us));
  const int rounds = 5;
  std::atomic<bool> stop{false}, spinning{false};
  JoinHandle spinner = skyloft::spawn([&] {
    spinning = true;
    spin_in_main_program(reinterpret_cast<const volatile bool*>(&stop));
  });
  ASSERT_TRUE(thread_wait_until([&] { return spinning.load(); }));
  std::vector<double> latencies;
  for (int r = 0; r < rounds; ++r) {
    std::this_thread::sleep_for(20ms);  // alone on its core: tickless, nobody interrupts it
    std::atomic<bool> ran{false};
    const auto t0 = Clock::now();
    JoinHandle competitor = skyloft::spawn([&] { ran = true; });
    EXPECT_TRUE(thread_wait_until([&] { return ran.load(); }));
    latencies.push_back(ms_since(t0));
    competitor.join();
  }
  stop = true;
  spinner.join();
  std::sort(latencies.begin(), latencies.end());
  const double median_quanta = latencies[latencies.size() / 2] * 1000.0 / quantum_us;
  std::printf("%s: competitor's first run after %.2f .. %.2f ms (median %.1f quanta of %u us)\n", mechanism().c_str(),
              latencies.front(), latencies.back(), median_quanta, quantum_us);
  // A few quanta: the quantum itself plus the ticker's wake-up; generous for a loaded machine.
  EXPECT_LT(median_quanta, 10.0);
  EXPECT_LT(latencies.back() * 1000.0 / quantum_us, kAsan ? 80.0 : 40.0);
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, NewlyContendedTest, ::testing::Values("dispatcher", "hybrid", "timer"), mechanism_name);

// ------------------------------------------------------------------------------------------------------------
// 6. A task looping in libc does not starve a computing task
// ------------------------------------------------------------------------------------------------------------

class LibcLoopTest : public MechanismTest {};

__attribute__((noinline)) std::uint64_t compute(std::uint64_t iterations) {
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    asm volatile("" : "+r"(x));
  }
  return x;
}

// Iterations of compute() that take `ms` on this machine (best of a few tries).
std::uint64_t calibrate(double ms) {
  const std::uint64_t probe = 2'000'000;
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = Clock::now();
    compute(probe);
    best = std::min(best, ms_since(t0));
  }
  return static_cast<std::uint64_t>(static_cast<double>(probe) * ms / best);
}

__attribute__((noinline)) void libc_loop(const std::atomic<bool>& stop, std::atomic<std::uint64_t>& ops) {
  char buf[256];
  std::uint64_t n = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    const int len = std::snprintf(buf, sizeof buf, "op %llu %.3f %s %x", static_cast<unsigned long long>(n),
                                  static_cast<double>(n) / 3.0, "libc", static_cast<unsigned>(n * 2654435761u));
    void* p = std::malloc(64 + static_cast<std::size_t>(len) * (n % 7));
    std::memcpy(p, buf, static_cast<std::size_t>(len));
    std::free(p);
    ++n;
  }
  ops.fetch_add(n);
}

TEST_P(LibcLoopTest, ComputeTaskIsNotStarvedByALibcLoop) {
  SKIP_WITHOUT_ASYNC_PREEMPTION();
  const std::uint32_t quantum_us = 100;
  const double work_quanta = 20;
  const std::uint64_t iterations = calibrate(work_quanta * quantum_us / 1000.0);
  SINGLE_WORKER_RUNTIME(rt, preempt_config("rr", mechanism(), quantum_us));  // rr: see NewlyContendedTest
  const int rounds = 3;
  std::atomic<bool> stop{false}, looping{false};
  std::atomic<std::uint64_t> ops{0};
  JoinHandle looper = skyloft::spawn([&] {
    looping = true;
    libc_loop(stop, ops);
  });
  ASSERT_TRUE(thread_wait_until([&] { return looping.load(); }));
  const auto before = worker_stats(*rt);
  std::vector<double> latencies;
  for (int r = 0; r < rounds; ++r) {
    std::this_thread::sleep_for(5ms);
    const auto t0 = Clock::now();
    JoinHandle worker = skyloft::spawn([&] { compute(iterations); });
    worker.join();
    latencies.push_back(ms_since(t0));
  }
  stop = true;
  looper.join();
  const auto after = worker_stats(*rt);
  std::sort(latencies.begin(), latencies.end());
  const double q_ms = quantum_us / 1000.0;
  std::printf("%s: %.0f quanta of compute beside a snprintf/malloc loop finished in %.1f .. %.1f ms (median %.0f "
              "quanta; alone %.0f); %llu preemptions, %llu deferred interrupts, %llu escapes, %llu libc-loop ops\n",
              mechanism().c_str(), work_quanta, latencies.front(), latencies.back(),
              latencies[latencies.size() / 2] / q_ms, work_quanta,
              static_cast<unsigned long long>(after.preemptions - before.preemptions),
              static_cast<unsigned long long>(after.preempt_deferred - before.preempt_deferred),
              static_cast<unsigned long long>(after.escapes - before.escapes), static_cast<unsigned long long>(ops.load()));
  EXPECT_GT(ops.load(), 0u);
  // Fair sharing of the core would take 2x the work (40 quanta). The loop is inside libc ~97% of the time
  // (~37 interrupts per successful preemption), so after a few failed quick retries the loop's handler
  // escapes (handoff.cpp H6): a spare thread runs the compute task while the loop keeps its own thread,
  // and the kernel shares the core between the two. Measured on a 2-core VM while builds ran beside it:
  // 7-19 ms per turn (before the escape: ~180 ms; before quick retries: seconds). The bound leaves room
  // for a loaded machine and still fails a starved task.
  const double bound_ms = kAsan ? 1000.0 : 150.0;
  EXPECT_LT(latencies[latencies.size() / 2], bound_ms) << "the compute task starved beside the libc loop";
  // The compute task ran only if the loop was preempted or escaped at least once.
  EXPECT_GE(after.preemptions - before.preemptions + after.escapes - before.escapes, 1u);
  EXPECT_TRUE(rt->shutdown().clean());
}

INSTANTIATE_TEST_SUITE_P(All, LibcLoopTest, ::testing::ValuesIn(kSignalMechanisms), mechanism_name);

}  // namespace
