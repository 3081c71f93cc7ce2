// test_core_list.cpp - unit tests of parse_core_list / format_core_list / allowed_cores (no runtime needed).
#include <gtest/gtest.h>
#include <sched.h>

#include <random>
#include <string>
#include <vector>

#include "skyloft/config.hpp"
#include "test_util.hpp"

namespace {

using skyloft::format_core_list;
using skyloft::parse_core_list;
using V = std::vector<int>;

TEST(ParseCoreList, SingleCores) {
  EXPECT_EQ(parse_core_list("0"), V{0});
  EXPECT_EQ(parse_core_list("7"), V{7});
  EXPECT_EQ(parse_core_list("1023"), V{1023}) << "the largest id below kMaxWorkers * 4";
}

TEST(ParseCoreList, Ranges) {
  EXPECT_EQ(parse_core_list("0-3"), (V{0, 1, 2, 3}));
  EXPECT_EQ(parse_core_list("5-5"), V{5});
  EXPECT_EQ(parse_core_list("0-3,6,8-9"), (V{0, 1, 2, 3, 6, 8, 9}));
  EXPECT_EQ(parse_core_list("10-12,1"), (V{1, 10, 11, 12}));
}

TEST(ParseCoreList, SortsAndDeduplicates) {
  EXPECT_EQ(parse_core_list("3,1,2"), (V{1, 2, 3}));
  EXPECT_EQ(parse_core_list("0-2,1-3"), (V{0, 1, 2, 3}));
  EXPECT_EQ(parse_core_list("4,4,4"), V{4});
  EXPECT_EQ(parse_core_list("2,0-3"), (V{0, 1, 2, 3}));
}

TEST(ParseCoreList, RejectsBadInput) {
  for (const char* bad : {"", "a", "a-b", "3-1", "1-", "-1", "-", ",", "0,", ",0", "0,,1", "0-1x", "1..3",
                          "0-1-2", "1 2", "0x1", "+1", "1024", "4096", "0-1024", "99999999999999999999"}) {
    SCOPED_TRACE(std::string("\"") + bad + "\"");
    EXPECT_CONFIG_ERROR(parse_core_list(bad), "core", "empty", "range", "invalid", "expected");
  }
  EXPECT_CONFIG_ERROR(parse_core_list(""), "empty");
  EXPECT_CONFIG_ERROR(parse_core_list("3-1"), "3-1", "revers", "range");
  EXPECT_CONFIG_ERROR(parse_core_list("a-b"), "a-b", "a");
}

TEST(ParseCoreList, ConfigErrorIsAnInvalidArgument) {
  EXPECT_THROW(parse_core_list("x"), std::invalid_argument);
}

TEST(FormatCoreList, Compacts) {
  EXPECT_EQ(format_core_list({}), "");
  EXPECT_EQ(format_core_list({5}), "5");
  EXPECT_EQ(format_core_list({0, 1, 2, 3, 6}), "0-3,6");
  EXPECT_EQ(format_core_list({1, 3, 5}), "1,3,5");
  EXPECT_EQ(format_core_list({0, 1, 2, 3, 6, 8, 9}), "0-3,6,8-9");
  EXPECT_EQ(format_core_list({0, 2, 3, 4, 1000}), "0,2-4,1000");
}

TEST(FormatCoreList, RoundTrips) {
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 500; ++iter) {
    V cores;
    for (int c = 0; c < 64; ++c) {
      if (rng() % 3 == 0) cores.push_back(c);
    }
    if (cores.empty()) continue;
    const std::string text = format_core_list(cores);
    SCOPED_TRACE(text);
    EXPECT_EQ(parse_core_list(text), cores);
    EXPECT_EQ(format_core_list(parse_core_list(text)), text);
  }
}

TEST(AllowedCores, MatchesAffinityMask) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  V expect;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) expect.push_back(c);
  }
  const V got = skyloft::allowed_cores();
  EXPECT_FALSE(got.empty());
  EXPECT_EQ(got, expect);
  EXPECT_EQ(parse_core_list(format_core_list(got)), got);
}

}  // namespace
