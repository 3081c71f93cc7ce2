// test_config.cpp - bad input everywhere it can enter: Config, SKYLOFT_* environment variables, SpawnOptions,
// a second Runtime, spawn() without a runtime; plus the policy registry and topology rules.
#include <gtest/gtest.h>

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/fair_slice.hpp"
#include "skyloft/skyloft.hpp"
#include "test_util.hpp"

namespace {

using namespace skytest;
using skyloft::Config;
using skyloft::ConfigError;
using skyloft::Runtime;
using skyloft::SpawnOptions;

const char* const kEnvVars[] = {"SKYLOFT_POLICY", "SKYLOFT_CORES", "SKYLOFT_STACK_SIZE", "SKYLOFT_SPIN_US",
                                "SKYLOFT_DISPATCHER_CORE", "SKYLOFT_STACK_GUARD"};

Config with_cores(std::string policy, std::string cores) {
  Config c = make_config(policy);
  c.cores = std::move(cores);
  return c;
}

// A core id below the parse limit that this process may not run on (or -1 if every id is allowed).
int unavailable_core() {
  const auto allowed = skyloft::allowed_cores();
  for (int c = 0; c < static_cast<int>(skyloft::kMaxWorkers * 4); ++c) {
    if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) return c;
  }
  return -1;
}

// ---- policy names ----

TEST(BadConfig, UnknownPolicy) {
  EXPECT_CONFIG_ERROR(Runtime rt(make_config("no-such-policy")), "policy");
  EXPECT_CONFIG_ERROR(Runtime rt(make_config("no-such-policy")), "no-such-policy");
  // The message lists what is allowed.
  EXPECT_CONFIG_ERROR(Runtime rt(make_config("no-such-policy")), "fifo");
  EXPECT_CONFIG_ERROR(Runtime rt(make_config("no-such-policy")), "sq");
  EXPECT_CONFIG_ERROR(Runtime rt(make_config("")), "policy");
  EXPECT_CONFIG_ERROR(Runtime rt(make_config("FIFO ")), "policy");
  EXPECT_CONFIG_ERROR(skyloft::make_policy("nope"), "fifo");
  EXPECT_EQ(Runtime::current(), nullptr) << "a failed constructor left a runtime registered";
}

// A build without the multi-app layer's hooks (SKYLOFT_MULTI_APP=OFF) says so instead of joining a daemon.
TEST(BadConfig, DaemonNeedsTheMultiAppLayer) {
  if (SKYLOFT_MULTI_APP) GTEST_SKIP() << "this build has the multi-app layer (tests/test_multiapp.cpp)";
  Config c = make_config("fifo");
  c.daemon = "/nonexistent/skyloftd.sock";
  EXPECT_CONFIG_ERROR(Runtime rt(c), "this build has no multi-app layer (SKYLOFT_MULTI_APP=OFF)");
  EXPECT_EQ(Runtime::current(), nullptr);
}

TEST(PolicyRegistry, BuiltInsAreKnown) {
  const auto names = skyloft::policy_names();
  ASSERT_GE(names.size(), 2u);
  EXPECT_EQ(std::count(names.begin(), names.end(), "fifo"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "sq"), 1);
  for (const auto& n : names) {
    auto p = skyloft::make_policy(n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->name(), n);
  }
  EXPECT_FALSE(skyloft::make_policy("fifo")->needs_dispatcher());
  EXPECT_TRUE(skyloft::make_policy("sq")->needs_dispatcher());
  // Registering a taken or empty name is a ConfigError.
  EXPECT_CONFIG_ERROR(skyloft::register_policy("fifo", [] { return skyloft::make_policy("fifo"); }), "fifo");
  EXPECT_CONFIG_ERROR(skyloft::register_policy("", [] { return skyloft::make_policy("fifo"); }));
}

TEST(BadConfig, UnknownPolicyParam) {
  Runtime rt(make_config("fifo"));
  EXPECT_CONFIG_ERROR(rt.set_policy_param("no_such_key", "1"), "no_such_key");
  std::atomic<bool> ran{false};
  rt.block_on([&] { ran = true; });
  EXPECT_TRUE(ran.load());
}

// ---- core lists ----

TEST(BadConfig, EmptyCoreList) {
  EXPECT_CONFIG_ERROR(Runtime rt(with_cores("fifo", "")), "empty");
  EXPECT_CONFIG_ERROR(Runtime rt(with_cores("sq", "")), "empty");
}

TEST(BadConfig, OutOfRangeCores) {
  for (const char* cores : {"0-999", "4096", "0,1023", "100000000000000000000"}) {
    SCOPED_TRACE(cores);
    EXPECT_CONFIG_ERROR(Runtime rt(with_cores("fifo", cores)), "range", "not available", "not allowed", "core");
  }
  const int c = unavailable_core();
  if (c >= 0) {
    SCOPED_TRACE("core " + std::to_string(c) + " is outside the affinity mask");
    EXPECT_CONFIG_ERROR(Runtime rt(with_cores("fifo", std::to_string(c))), "out of range", "not available",
                        "not allowed", "affinity");
    EXPECT_CONFIG_ERROR(Runtime rt(with_cores("fifo", "0," + std::to_string(c))), std::to_string(c));
  }
  EXPECT_EQ(Runtime::current(), nullptr);
}

TEST(BadConfig, MalformedCoreLists) {
  for (const char* cores : {"a-b", "3-1", "1-", "-1", ",", "0,,1", "0-1x", "x", "1..3", "0-1-2", " "}) {
    SCOPED_TRACE(cores);
    EXPECT_CONFIG_ERROR(Runtime rt(with_cores("fifo", cores)), "core", "empty");
  }
}

TEST(BadConfig, SqNeedsADispatcherAndAWorker) {
  const auto allowed = skyloft::allowed_cores();
  EXPECT_CONFIG_ERROR(Runtime rt(with_cores("sq", std::to_string(allowed[0]))), "core", "dispatcher");
  if (allowed.size() < 2) GTEST_SKIP() << "needs two cores";
  {
    Runtime rt(with_cores("sq", skyloft::format_core_list({allowed[0], allowed[1]})));
    EXPECT_EQ(rt.num_workers(), 1u);
    EXPECT_EQ(rt.dispatcher_core(), allowed[0]) << "dispatcher_core -1 means the first listed core";
    EXPECT_EQ(rt.worker_cores(), std::vector<int>{allowed[1]});
  }
  {
    Config c = with_cores("sq", skyloft::format_core_list({allowed[0], allowed[1]}));
    c.dispatcher_core = allowed[1];
    Runtime rt(c);
    EXPECT_EQ(rt.dispatcher_core(), allowed[1]);
    EXPECT_EQ(rt.worker_cores(), std::vector<int>{allowed[0]});
    std::atomic<int> worker{-2};
    rt.block_on([&] { worker = skyloft::this_task::worker_index(); });
    EXPECT_EQ(worker.load(), 0);
  }
  {
    Config c = with_cores("sq", skyloft::format_core_list({allowed[0], allowed[1]}));
    c.dispatcher_core = 999;  // not in the list
    EXPECT_CONFIG_ERROR(Runtime rt(c), "dispatcher", "core");
  }
}

TEST(Topology, FifoUsesEveryListedCore) {
  const auto allowed = skyloft::allowed_cores();
  {
    Runtime rt(make_config("fifo"));
    EXPECT_EQ(rt.worker_cores(), allowed);
    EXPECT_EQ(rt.num_workers(), allowed.size());
    EXPECT_EQ(rt.dispatcher_core(), -1);
  }
  {
    Runtime rt(with_cores("fifo", std::to_string(allowed.back())));
    EXPECT_EQ(rt.worker_cores(), std::vector<int>{allowed.back()});
    std::atomic<int> cpu{-1};
    rt.block_on([&] { cpu = sched_getcpu(); });
    EXPECT_EQ(cpu.load(), allowed.back()) << "pin_workers: the worker must run on its core";
  }
}

// ---- stack sizes ----

TEST(BadConfig, ZeroStackSize) {
  Config c = make_config("fifo");
  c.stack_size = 0;
  EXPECT_CONFIG_ERROR(Runtime rt(c), "stack");
}

TEST(BadConfig, AbsurdStackSize) {
  Config c = make_config("fifo");
  c.stack_size = skyloft::kMaxStackSize + 1;
  EXPECT_CONFIG_ERROR(Runtime rt(c), "stack");
  c.stack_size = SIZE_MAX;
  EXPECT_CONFIG_ERROR(Runtime rt(c), "stack");
}

TEST(BadConfig, AbsurdSpawnStackSize) {
  Runtime rt(make_config("fifo"));
  SpawnOptions o;
  o.stack_size = skyloft::kMaxStackSize + 1;
  EXPECT_CONFIG_ERROR(skyloft::spawn([] {}, o), "stack");
  o.stack_size = SIZE_MAX;
  EXPECT_CONFIG_ERROR(skyloft::spawn([] {}, o), "stack");
  rt.block_on([&] { EXPECT_CONFIG_ERROR(skyloft::spawn([] {}, o), "stack"); });
  // The failed spawns leaked nothing and the runtime still works.
  std::atomic<bool> ran{false};
  skyloft::spawn([&] { ran = true; }).join();
  EXPECT_TRUE(ran.load());
  EXPECT_TRUE(rt.shutdown().clean());
}

TEST(BadConfig, BadCoreHint) {
  Runtime rt(make_config("fifo"));
  for (int core : {999, static_cast<int>(skyloft::kMaxWorkers * 4), 1 << 20}) {
    SCOPED_TRACE(core);
    SpawnOptions o;
    o.core = core;
    std::atomic<bool> ran{false};
    EXPECT_CONFIG_ERROR(skyloft::spawn([&] { ran = true; }, o), "core");
    EXPECT_FALSE(ran.load()) << "a rejected task ran";
  }
  const int c = unavailable_core();
  if (c >= 0) {
    SpawnOptions o;
    o.core = c;
    EXPECT_CONFIG_ERROR(skyloft::spawn([] {}, o), "core");
  }
  rt.block_on([] {
    SpawnOptions o;
    o.core = 999;
    EXPECT_CONFIG_ERROR(skyloft::spawn([] {}, o), "core");
  });
  EXPECT_TRUE(rt.shutdown().clean()) << "a rejected spawn left a task behind";
}

// Guardless stacks may be far smaller than guarded ones; each kind says its own minimum.
TEST(BadConfig, StackSizeMinimumDependsOnTheGuard) {
  Config c = make_config("fifo");
  c.stack_size = skyloft::kMinGuardlessStackSize;
  EXPECT_CONFIG_ERROR(Runtime rt(c), "guarded stack (minimum 16384 bytes; a guardless stack");
  c.stack_guard = false;
  c.stack_size = skyloft::kMinGuardlessStackSize - 1;
  EXPECT_CONFIG_ERROR(Runtime rt(c), "too small (minimum 2048 bytes for a guardless stack)");
  c.stack_size = skyloft::kMinGuardlessStackSize;
  Runtime rt(c);
  std::atomic<int> ran{0};
  SpawnOptions body;  // gtest's assertions need more than 2 KiB
  body.stack_size = 256 * 1024;
  skyloft::spawn([&] {
    SpawnOptions o;
    o.guard = skyloft::StackGuard::on;  // the default size is raised to the guarded minimum
    skyloft::spawn([&] { ran.fetch_add(1); }, o).join();
    o.stack_size = 4096;  // an explicit size below it is an error
    EXPECT_CONFIG_ERROR(skyloft::spawn([] {}, o), "too small for a guarded stack");
    o.guard = skyloft::StackGuard::off;
    o.stack_size = 1024;
    EXPECT_CONFIG_ERROR(skyloft::spawn([] {}, o), "minimum 2048 bytes for a guardless stack");
    o.stack_size = 3000;  // rounded up to 64 bytes
    skyloft::spawn([&] { ran.fetch_add(1); }, o).join();
  }, body).join();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_TRUE(rt.shutdown().clean());
}

// A callable whose copy throws: spawn must give the task back and rethrow.
struct ThrowingCopy {
  std::atomic<int>* calls;
  ThrowingCopy(std::atomic<int>* c) : calls(c) {}
  ThrowingCopy(const ThrowingCopy&) { throw std::runtime_error("copy failed"); }
  void operator()() const { calls->fetch_add(1); }
};

TEST(BadConfig, SpawnWhoseCallableThrowsOnCopy) {
  Runtime rt(make_config("fifo"));
  std::atomic<int> calls{0};
  ThrowingCopy f(&calls);
  EXPECT_THROW(skyloft::spawn(f), std::runtime_error);
  EXPECT_EQ(calls.load(), 0);
  EXPECT_TRUE(rt.shutdown().clean());
}

// ---- environment ----

class EnvConfig : public ::testing::Test {
 protected:
  EnvConfig() {
    for (const char* v : kEnvVars) cleared_.emplace_back(std::make_unique<ScopedEnv>(v, std::nullopt));
  }
  std::vector<std::unique_ptr<ScopedEnv>> cleared_;
};

TEST_F(EnvConfig, DefaultsWhenUnset) {
  const Config c = Config::from_env();
  const Config d;
  EXPECT_EQ(c.policy, d.policy);
  EXPECT_EQ(c.cores, d.cores);
  EXPECT_EQ(c.stack_size, d.stack_size);
  EXPECT_EQ(c.spin_us, d.spin_us);
  EXPECT_EQ(c.dispatcher_core, d.dispatcher_core);
}

TEST_F(EnvConfig, ValidValuesAreRead) {
  ScopedEnv p("SKYLOFT_POLICY", "sq");
  ScopedEnv c("SKYLOFT_CORES", "0-1");
  ScopedEnv s("SKYLOFT_STACK_SIZE", "262144");
  ScopedEnv u("SKYLOFT_SPIN_US", "7");
  ScopedEnv d("SKYLOFT_DISPATCHER_CORE", "1");
  const Config cfg = Config::from_env();
  EXPECT_EQ(cfg.policy, "sq");
  ASSERT_TRUE(cfg.cores.has_value());
  EXPECT_EQ(skyloft::parse_core_list(*cfg.cores), (std::vector<int>{0, 1}));
  EXPECT_EQ(cfg.stack_size, 262144u);
  EXPECT_EQ(cfg.spin_us, 7u);
  EXPECT_EQ(cfg.dispatcher_core, 1);
}

TEST_F(EnvConfig, UnknownPolicy) {
  ScopedEnv p("SKYLOFT_POLICY", "bogus");
  // Either from_env() or the Runtime constructor may reject it.
  EXPECT_CONFIG_ERROR(Runtime rt(Config::from_env()), "policy");
  EXPECT_CONFIG_ERROR(Runtime rt, "policy");  // default constructor reads the environment
}

TEST_F(EnvConfig, BadCores) {
  for (const char* v : {"", "a-b", "3-1", "0-999", "4096"}) {
    SCOPED_TRACE(v);
    ScopedEnv c("SKYLOFT_CORES", v);
    EXPECT_CONFIG_ERROR(Runtime rt(Config::from_env()), "core", "empty");
  }
}

TEST_F(EnvConfig, MalformedNumbersThrowInFromEnv) {
  struct Case {
    const char* var;
    const char* value;
  };
  const Case cases[] = {
      {"SKYLOFT_STACK_SIZE", "abc"},     {"SKYLOFT_STACK_SIZE", "12abc"},
      {"SKYLOFT_STACK_SIZE", "-4096"},   {"SKYLOFT_STACK_SIZE", ""},
      {"SKYLOFT_STACK_SIZE", "99999999999999999999999"},
      {"SKYLOFT_SPIN_US", "fast"},       {"SKYLOFT_SPIN_US", "-1"},
      {"SKYLOFT_SPIN_US", "1.5"},        {"SKYLOFT_SPIN_US", "99999999999999999999"},
      {"SKYLOFT_SPIN_US", ""},           {"SKYLOFT_DISPATCHER_CORE", "x"},
      {"SKYLOFT_DISPATCHER_CORE", "1x"}, {"SKYLOFT_DISPATCHER_CORE", "99999999999999999999"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.var) + "=\"" + c.value + "\"");
    ScopedEnv e(c.var, c.value);
    // Loose match: the message should name the variable or what it configures.
    EXPECT_CONFIG_ERROR(Config::from_env(), c.var, "stack", "spin", "dispatcher");
  }
}

// The 0/1 switches: each accepts exactly "0" or "1" (spaces trimmed) and names itself in the error.
TEST_F(EnvConfig, OnOffSwitches) {
  struct Switch {
    const char* name;
    bool Config::*field;
    bool by_default;
  };
  for (const Switch& sw : {Switch{"SKYLOFT_STACK_GUARD", &Config::stack_guard, true},
                           Switch{"SKYLOFT_SPIN_YIELD", &Config::spin_yield, true},
                           Switch{"SKYLOFT_PIN_WORKERS", &Config::pin_workers, true},
                           Switch{"SKYLOFT_TASK_TLS", &Config::task_tls, false}}) {
    SCOPED_TRACE(sw.name);
    EXPECT_EQ(Config::from_env().*sw.field, sw.by_default);
    {
      ScopedEnv g(sw.name, "0");
      EXPECT_FALSE(Config::from_env().*sw.field);
    }
    {
      ScopedEnv g(sw.name, " 1 ");
      EXPECT_TRUE(Config::from_env().*sw.field);
    }
    for (const char* v : {"", "yes", "true", "2", "01", "-1", "0x0", "off"}) {
      SCOPED_TRACE(std::string("value \"") + v + "\"");
      ScopedEnv g(sw.name, v);
      EXPECT_CONFIG_ERROR(Config::from_env(), std::string(sw.name) + "='" + v + "' must be 0");
    }
  }
}

// SKYLOFT_WORKER_SLICE_US: 0 (the kernel's slice) or 100..100000 us; out of range is a ConfigError at start.
TEST_F(EnvConfig, WorkerSlice) {
  EXPECT_EQ(Config::from_env().worker_slice_us, 0u);
  {
    ScopedEnv e("SKYLOFT_WORKER_SLICE_US", "100");
    EXPECT_EQ(Config::from_env().worker_slice_us, 100u);
    Runtime rt(Config::from_env());
    std::uint32_t in_task = 0;
    rt.block_on([&] { in_task = skyloft::fair_slice::current_us(); });  // the worker thread's
    // A kernel without custom slices (before 6.12) reports none for the workers; find out on a thread.
    std::uint32_t supported = 0;
    std::thread([&] { supported = skyloft::fair_slice::request(100) == 0 ? skyloft::fair_slice::current_us() : 0; }).join();
    EXPECT_EQ(in_task, supported == 100 ? 100u : 0u);
  }
  for (const char* v : {"x", "-5", "100001"}) {
    SCOPED_TRACE(v);
    ScopedEnv e("SKYLOFT_WORKER_SLICE_US", v);
    EXPECT_CONFIG_ERROR(Config::from_env(), "SKYLOFT_WORKER_SLICE_US");
  }
  ScopedEnv e("SKYLOFT_WORKER_SLICE_US", "50");
  EXPECT_CONFIG_ERROR(Runtime rt(Config::from_env()), "worker slice 50 us");
}

// Asking for a slice keeps the thread's nice value: a runtime started under `nice` stays niced.
TEST(FairSlice, KeepsTheNiceValue) {
  std::thread([] {
    const auto self = static_cast<id_t>(::gettid());
    ASSERT_EQ(::setpriority(PRIO_PROCESS, self, 5), 0) << std::strerror(errno);
    EXPECT_EQ(skyloft::fair_slice::request(200), 0);
    EXPECT_EQ(::getpriority(PRIO_PROCESS, self), 5);
  }).join();
}

TEST_F(EnvConfig, BadStackSizes) {
  for (const char* v : {"0", "2147483648"}) {  // zero, 2 GiB (> 1 GiB)
    SCOPED_TRACE(v);
    ScopedEnv e("SKYLOFT_STACK_SIZE", v);
    EXPECT_CONFIG_ERROR(Runtime rt(Config::from_env()), "stack");
  }
}

// ---- runtime lifetime errors ----

TEST(RuntimeLifetime, SecondConcurrentRuntimeIsALogicError) {
  Runtime first(make_config("fifo"));
  try {
    Runtime second(make_config("fifo"));
    ADD_FAILURE() << "a second concurrent Runtime was created";
  } catch (const ConfigError& e) {
    ADD_FAILURE() << "expected std::logic_error (not ConfigError): " << e.what();
  } catch (const std::logic_error& e) {
    SUCCEED() << e.what();
  }
  // A second attempt from another thread is also refused.
  std::atomic<int> outcome{0};
  std::thread t([&] {
    try {
      Runtime second(make_config("fifo"));
      outcome = 1;
    } catch (const std::logic_error&) {
      outcome = 2;
    }
  });
  t.join();
  EXPECT_EQ(outcome.load(), 2);
  // The first one is unaffected.
  EXPECT_EQ(Runtime::current(), &first);
  std::atomic<bool> ran{false};
  first.block_on([&] { ran = true; });
  EXPECT_TRUE(ran.load());
  // Even from inside a task.
  first.block_on([] { EXPECT_THROW(Runtime nested(make_config("fifo")), std::logic_error); });
}

TEST(RuntimeLifetime, SpawnWithoutRuntimeIsALogicError) {
  ASSERT_EQ(Runtime::current(), nullptr);
  std::atomic<bool> ran{false};
  EXPECT_THROW(skyloft::spawn([&] { ran = true; }), std::logic_error);
  {
    Runtime rt(make_config("fifo"));
    rt.block_on([] {});
  }
  EXPECT_EQ(Runtime::current(), nullptr);
  EXPECT_THROW(skyloft::spawn([&] { ran = true; }), std::logic_error) << "after the runtime was destroyed";
  EXPECT_FALSE(ran.load());
  // Also not a ConfigError: the arguments are fine, the state is wrong.
  try {
    skyloft::spawn([] {});
  } catch (const ConfigError& e) {
    ADD_FAILURE() << "spawn without runtime threw ConfigError: " << e.what();
  } catch (const std::logic_error&) {
  }
}

TEST(RuntimeLifetime, NewRuntimeAfterShutdownAndAfterFailedStart) {
  {
    Config bad = make_config("fifo");
    bad.stack_size = 0;
    EXPECT_THROW(Runtime rt(bad), ConfigError);
  }
  Runtime rt(make_config("fifo"));  // a failed constructor must not block the next runtime
  EXPECT_TRUE(rt.shutdown().clean());
  EXPECT_TRUE(rt.shutdown().clean()) << "shutdown() is idempotent";
}

TEST(WaitReasons, ToStringIsDistinct) {
  using skyloft::WaitReason;
  const WaitReason all[] = {WaitReason::none,      WaitReason::mutex,   WaitReason::condvar, WaitReason::rwlock,
                            WaitReason::semaphore, WaitReason::barrier, WaitReason::waitgroup,
                            WaitReason::join,      WaitReason::sleep,   WaitReason::address};
  std::vector<std::string> names;
  for (auto r : all) {
    const char* s = skyloft::to_string(r);
    ASSERT_NE(s, nullptr);
    EXPECT_GT(std::string(s).size(), 0u);
    names.emplace_back(s);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::unique(names.begin(), names.end()), names.end()) << "two reasons print the same";
  EXPECT_NE(std::string(skyloft::to_string(WaitReason::semaphore)).find("sem"), std::string::npos);
  skyloft::ShutdownReport empty;
  EXPECT_TRUE(empty.clean());
}

}  // namespace
