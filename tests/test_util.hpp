// test_util.hpp - helpers shared by the skyloft tests: sanitizer-aware loop scaling, ConfigError matching,
// a per-test watchdog that dumps the runtime before aborting a hung test, environment scoping, timing.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "skyloft/skyloft.hpp"

// ---- sanitizer detection (GCC defines __SANITIZE_*__, Clang has __has_feature) ----
#if defined(__SANITIZE_THREAD__)
#define SKYTEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SKYTEST_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SKYTEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SKYTEST_ASAN 1
#endif
#endif

namespace skytest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

#if defined(SKYTEST_TSAN)
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif
#if defined(SKYTEST_ASAN)
inline constexpr bool kAsan = true;
#else
inline constexpr bool kAsan = false;
#endif

// Loop counts: full in release, halved under ASan, a tenth under TSan (which is ~10x slower).
inline std::size_t scaled(std::size_t n, std::size_t minimum = 1) {
  std::size_t s = n;
  if (kTsan) s = n / 10;
  else if (kAsan) s = n / 2;
  return std::max(s, minimum);
}

// Generous bound for "this must not hang / must not be hugely late" checks.
inline std::chrono::milliseconds slack() { return kTsan ? 20000ms : (kAsan ? 8000ms : 4000ms); }

// A hung test is aborted after this long, after dumping the runtime state (ctest's timeout is higher).
inline std::chrono::seconds watchdog_limit() { return kTsan ? 240s : (kAsan ? 60s : 30s); }

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Runs `f`; succeeds iff it throws skyloft::ConfigError whose what() contains (case-insensitively) at least
// one of `any_of` (an empty list accepts any message).
template <class F>
::testing::AssertionResult throws_config_error(F&& f, std::initializer_list<std::string_view> any_of) {
  try {
    f();
  } catch (const skyloft::ConfigError& e) {
    const std::string msg = lower(e.what());
    if (any_of.size() == 0) return ::testing::AssertionSuccess() << "message: " << e.what();
    for (auto s : any_of) {
      if (msg.find(lower(s)) != std::string::npos) return ::testing::AssertionSuccess();
    }
    auto r = ::testing::AssertionFailure() << "ConfigError thrown, but its message \"" << e.what()
                                           << "\" contains none of:";
    for (auto s : any_of) r << " \"" << s << "\"";
    return r;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "expected skyloft::ConfigError, got another exception: " << e.what();
  } catch (...) {
    return ::testing::AssertionFailure() << "expected skyloft::ConfigError, got a non-std exception";
  }
  return ::testing::AssertionFailure() << "expected skyloft::ConfigError, nothing was thrown";
}

#define EXPECT_CONFIG_ERROR(stmt, ...) \
  EXPECT_TRUE(::skytest::throws_config_error([&] { stmt; }, {__VA_ARGS__})) << "statement: " #stmt

inline skyloft::Config make_config(const std::string& policy) {
  skyloft::Config c;
  c.policy = policy;
  c.cores = std::nullopt;  // every allowed core
  return c;
}

// ---- the policy x mechanism grid of the parameterised suites ----

inline const std::vector<std::string> kPolicies = {"fifo", "sq", "rr", "cfs", "eevdf"};
inline const std::vector<std::string> kMechanisms = {"none", "timer", "dispatcher", "flag", "hybrid"};
inline const std::vector<std::string> kPreemptingMechanisms = {"timer", "dispatcher", "flag", "hybrid"};
// The mechanisms that interrupt code without preempt points (flag never does).
inline const std::vector<std::string> kSignalMechanisms = {"timer", "dispatcher", "hybrid"};

using PolicyAndMechanism = std::tuple<std::string, std::string>;
inline std::string param_name(const ::testing::TestParamInfo<PolicyAndMechanism>& info) {
  return std::get<0>(info.param) + "_" + std::get<1>(info.param);
}

inline skyloft::Config preempt_config(const std::string& policy, const std::string& mechanism,
                                      std::uint32_t quantum_us) {
  skyloft::Config c = make_config(policy);
  c.preempt = mechanism;
  c.quantum_us = quantum_us;
  return c;
}

inline skyloft::WorkerStats worker_stats(const skyloft::Runtime& rt, std::size_t worker = 0) {
  return rt.stats().at(worker);
}

// Builds a runtime with exactly one worker for `base.policy` (keeping the rest of `base`) if the policy allows
// it: first with one core, then (for centralized policies, which need a dispatcher core) with two. Returns
// nullptr when impossible.
inline std::unique_ptr<skyloft::Runtime> make_single_worker_runtime(const skyloft::Config& base) {
  const auto cores = skyloft::allowed_cores();
  for (std::size_t n = 1; n <= std::min<std::size_t>(2, cores.size()); ++n) {
    skyloft::Config c = base;
    c.cores = skyloft::format_core_list(std::vector<int>(cores.begin(), cores.begin() + n));
    try {
      auto rt = std::make_unique<skyloft::Runtime>(c);
      if (rt->num_workers() == 1) return rt;
    } catch (const skyloft::ConfigError&) {
    }
  }
  return nullptr;
}

inline std::unique_ptr<skyloft::Runtime> make_single_worker_runtime(const std::string& policy) {
  return make_single_worker_runtime(make_config(policy));
}

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Spins (yielding the kernel thread) until pred() or the timeout; returns pred().
template <class P>
bool thread_wait_until(P pred, std::chrono::milliseconds timeout = slack()) {
  const auto end = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > end) return pred();
    std::this_thread::sleep_for(100us);
  }
  return true;
}

// Same, from inside a task (yields the task).
template <class P>
bool task_wait_until(P pred, std::chrono::milliseconds timeout = slack()) {
  const auto end = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > end) return pred();
    skyloft::this_task::yield();
  }
  return true;
}

// Sets (or unsets, with nullopt) an environment variable for the scope, restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value->c_str(), 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Aborts a hung test after watchdog_limit(), printing the runtime's state first so the hang is diagnosable.
class Watchdog {
 public:
  Watchdog() : thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> l(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void run() {
    std::unique_lock<std::mutex> l(m_);
    if (cv_.wait_for(l, watchdog_limit(), [this] { return done_; })) return;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::fprintf(stderr, "\nskytest watchdog: %s.%s still running after %llds; aborting. Runtime state:\n",
                 info ? info->test_suite_name() : "?", info ? info->name() : "?",
                 static_cast<long long>(watchdog_limit().count()));
    if (auto* rt = skyloft::Runtime::current()) rt->dump(stderr);
    std::fflush(stderr);
    std::abort();
  }
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members above exist
};

inline std::uint64_t sum_of(const std::vector<skyloft::WorkerStats>& s, std::uint64_t skyloft::WorkerStats::*field) {
  std::uint64_t total = 0;
  for (const auto& w : s) total += w.*field;
  return total;
}

// errno is a thread-local reached through __errno_location(), which glibc declares __attribute__((const)): inside
// one function the compiler may keep &errno from before a switch, and after a migration that is the previous
// worker's errno. What the runtime guarantees is that the *current thread's* errno holds the task's value when
// it resumes, so the checks go through opaque, non-inlined accessors.
// Without task_tls even those have a window: a task preempted between __errno_location() and the store (or
// load) that follows, and resumed on another worker, touches the old worker's errno, i.e. the errno of
// whichever task runs there now (README, "limits"). Libc's own errno writes are not preemptible (libc is
// unsafe code for the safe-point test), user code's are: so without task_tls the accessors run with
// preemption off, and with task_tls (every task has its own errno) they run bare.
template <bool kGuarded>
__attribute__((noinline)) void set_errno(int v) {
  std::optional<skyloft::PreemptGuard> g;
  if constexpr (kGuarded) g.emplace();
  errno = v;
  asm volatile("" ::: "memory");
}
template <bool kGuarded>
__attribute__((noinline)) int get_errno() {
  std::optional<skyloft::PreemptGuard> g;
  if constexpr (kGuarded) g.emplace();
  asm volatile("" ::: "memory");
  return errno;
}

}  // namespace skytest
