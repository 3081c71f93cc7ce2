// test_stack_overflow.cpp - a task that overflows its stack hits the guard page below it; the runtime reports
// "skyloft: stack overflow in task <id>" on stderr and aborts (instead of corrupting a neighbouring stack).
// A guardless stack (StackGuard::off) has a canary word instead, checked when the task switches out.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <string>

#include "skyloft/skyloft.hpp"
#include "test_util.hpp"

namespace {

using skyloft::Runtime;
using skyloft::SpawnOptions;

// Not provably infinite (the limit is read at run time) and not optimizable: every frame owns a volatile
// array that is used after the recursive call returns, so it cannot become a loop or a tail call.
volatile std::size_t g_limit = static_cast<std::size_t>(-1);

__attribute__((noinline)) std::size_t recurse(std::size_t depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  frame[sizeof(frame) - 1] = static_cast<char>(depth >> 8);
  std::size_t below = 0;
  if (depth < g_limit) below = recurse(depth + 1);
  asm volatile("" ::: "memory");
  return below + static_cast<unsigned char>(frame[0]) + static_cast<unsigned char>(frame[sizeof(frame) - 1]);
}

// A 24 KiB local array written whole: in a 16 KiB stack it runs ~9 KiB past the low end, over the canary.
// (recurse() writes two bytes of each 512-byte frame, and ASan's redzones between frames are never
// written at all, so a recursion can step over a canary word without touching it.)
__attribute__((noinline)) std::size_t big_frame() {
  volatile char frame[24 * 1024];
  for (std::size_t i = 0; i < sizeof(frame); ++i) frame[i] = static_cast<char>(i);
  asm volatile("" ::: "memory");
  return static_cast<unsigned char>(frame[0]) + static_cast<unsigned char>(frame[sizeof(frame) - 1]);
}

class StackOverflowDeathTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_P(StackOverflowDeathTest, DefaultStackOverflowIsReported) {
  const std::string policy = GetParam();
  EXPECT_DEATH(
      {
        Runtime rt(skytest::make_config(policy));
        rt.block_on([] { recurse(0); });
      },
      "skyloft: stack overflow in task [0-9]+");
}

TEST_P(StackOverflowDeathTest, OverflowOfACustomSizedStackInANestedTask) {
  const std::string policy = GetParam();
  EXPECT_DEATH(
      {
        Runtime rt(skytest::make_config(policy));
        rt.block_on([] {
          SpawnOptions o;
          o.stack_size = 256 * 1024;
          skyloft::spawn([] { recurse(0); }, o).join();
        });
      },
      "stack overflow in task [0-9]+");
}

TEST_P(StackOverflowDeathTest, OverflowWhileOtherTasksRun) {
  const std::string policy = GetParam();
  EXPECT_DEATH(
      {
        Runtime rt(skytest::make_config(policy));
        std::atomic<bool> stop{false};
        auto busy = skyloft::spawn([&] {
          while (!stop.load()) skyloft::this_task::yield();
        });
        rt.block_on([] { recurse(0); });
        stop = true;
        busy.join();
      },
      "stack overflow in task [0-9]+");
}

// Guardless: task B's big frame runs ~9 KiB past the low end of its 16 KiB slot into the slots carved just
// before it, of tasks that have finished (under ASan, a live task's frames there would be reported by ASan
// first), returns, and B yields or exits; the canary check at the switch-out reports it. (Unbounded
// recursion would run on through the slab and fault below it.)
TEST_P(StackOverflowDeathTest, GuardlessOverflowIsCaughtByTheCanaryAtSwitchOut) {
  const std::string policy = GetParam();
  EXPECT_DEATH(
      {
        Runtime rt(skytest::make_config(policy));
        rt.block_on([] {
          SpawnOptions o;
          o.guard = skyloft::StackGuard::off;
          o.stack_size = 16 * 1024;  // not the default size: carved from its class's slab, upwards
          skyloft::Semaphore go;
          skyloft::JoinHandle below[3];  // 48 KiB of free slots below B
          for (auto& h : below) h = skyloft::spawn([] {}, o);
          auto b = skyloft::spawn(
              [&] {
                go.acquire();
                big_frame();
                skyloft::this_task::yield();
              },
              o);
          for (auto& h : below) h.join();  // free (under ASan: unpoisoned) before B overflows into them
          go.release();
          b.join();
        });
      },
      "skyloft: stack overflow in task [0-9]+ \\(guardless stack of 16384 bytes.*canary word was overwritten");
}

// The control: recursion that fits is fine (so the death above is really the overflow).
TEST_P(StackOverflowDeathTest, BoundedRecursionFits) {
  Runtime rt(skytest::make_config(GetParam()));
  std::atomic<std::size_t> result{0};
  g_limit = 40;  // ~40 frames of > 512 bytes: well below the default 128 KiB (even with ASan redzones)
  rt.block_on([&] { result = recurse(0) + 1; });
  g_limit = static_cast<std::size_t>(-1);
  EXPECT_GT(result.load(), 0u);
  std::atomic<bool> ran{false};
  rt.block_on([&] { ran = true; });
  EXPECT_TRUE(ran.load());
  // The same in a guardless stack: the canary is intact, nothing is reported.
  g_limit = 10;
  rt.block_on([&] {
    SpawnOptions o;
    o.guard = skyloft::StackGuard::off;
    o.stack_size = 16 * 1024;
    skyloft::spawn(
        [&] {
          result = recurse(0) + 1;
          skyloft::this_task::yield();
        },
        o)
        .join();
  });
  g_limit = static_cast<std::size_t>(-1);
  EXPECT_GT(result.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Policies, StackOverflowDeathTest, ::testing::Values("fifo", "sq"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
