// test_many_tasks.cpp - 200,000 live tasks at once, far past the ~32k that one guarded mapping per stack
// allows under vm.max_map_count: guardless stacks are carved from shared slabs, so the number of memory maps
// stays flat while the tasks live, and every task still runs to the end.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <fstream>
#include <string>

#include "skyloft/skyloft.hpp"
#include "test_util.hpp"

namespace {

using skyloft::Runtime;
using skyloft::SpawnOptions;

std::size_t count_memory_maps() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

// Release: 200,000 tasks on the smallest stack. ASan's frames are larger (redzones), so its tasks get
// 16 KiB stacks (still guardless). TSan registers every task as a fiber, which it counts as a thread: it
// dies beyond 8128 at once ("Thread limit exceeded"), and keeps ~1 MiB of state per fiber (8,000 tasks
// took 7.7 GB of RSS). So TSan holds 2,000 tasks: it checks the mechanism's synchronization, release and
// ASan the scale.
std::size_t live_tasks() { return skytest::kTsan ? 2'000 : 200'000; }
std::size_t stack_bytes() { return skytest::kAsan || skytest::kTsan ? 16 * 1024 : skyloft::kMinGuardlessStackSize; }

void hold_live_tasks(const std::string& policy, bool via_config) {
  skyloft::Config cfg = skytest::make_config(policy);
  SpawnOptions o;
  if (via_config) {
    cfg.stack_guard = false;
    cfg.stack_size = stack_bytes();
  } else {
    o.guard = skyloft::StackGuard::off;
    o.stack_size = stack_bytes();
  }
  Runtime rt(cfg);
  skytest::Watchdog dog;
  const std::size_t n = live_tasks();
  std::atomic<std::size_t> started{0}, finished{0};
  skyloft::WaitGroup release(1);
  skyloft::WaitGroup all_done(n);
  std::size_t maps_before = 0, maps_live = 0;
  SpawnOptions body;  // the test's own code (gtest, /proc reads) needs a full guarded stack
  body.guard = skyloft::StackGuard::on;
  body.stack_size = 256 * 1024;
  skyloft::spawn([&] {
    maps_before = count_memory_maps();
    for (std::size_t i = 0; i < n; ++i) {
      skyloft::spawn(
          [&] {
            started.fetch_add(1, std::memory_order_relaxed);
            release.wait();
            finished.fetch_add(1, std::memory_order_relaxed);
            all_done.done();
          },
          o)
          .detach();
    }
    EXPECT_TRUE(skytest::task_wait_until([&] { return started.load() == n; }, 10 * skytest::slack()))
        << started.load() << " of " << n << " tasks started";
    maps_live = count_memory_maps();
    EXPECT_EQ(finished.load(), 0u) << "a task got past the WaitGroup before it was released";
    release.done();
    all_done.wait();
  }, body).join();
  EXPECT_EQ(finished.load(), n);
  // 2 KiB slots in 4 MiB slabs: ~100 slabs for 200,000 tasks (adjacent ones may merge into one map). TSan
  // maps state of its own for every fiber, so there the count says nothing about the stacks.
  const std::size_t slabs = n * stack_bytes() / (std::size_t{4} << 20) + 2;
  if (!skytest::kTsan) {
    EXPECT_LE(maps_live, maps_before + slabs + 64) << "memory maps grew with the tasks: " << maps_before << " -> "
                                                   << maps_live << " for " << n << " live tasks";
  }
  EXPECT_TRUE(rt.shutdown().clean());
}

class ManyTasks : public ::testing::TestWithParam<std::string> {};

TEST_P(ManyTasks, GuardlessPerSpawn) { hold_live_tasks(GetParam(), /*via_config=*/false); }

TEST_P(ManyTasks, GuardlessByConfig) { hold_live_tasks(GetParam(), /*via_config=*/true); }

INSTANTIATE_TEST_SUITE_P(Policies, ManyTasks, ::testing::Values("fifo", "sq"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
