// test_daemon_assign.cpp - the daemon's core assignment rule (LC first, at least --min-lc-cores, the rest
// shared by BE apps) as a pure function.
#include <gtest/gtest.h>

#include <vector>

#include "multiapp/assignment.hpp"

namespace {

using namespace skyloft::multiapp;

std::vector<int> owners(const Assignment& a) {
  std::vector<int> o;
  for (const CoreAssignment& c : a.cores) o.push_back(c.owner);
  return o;
}

TEST(DaemonAssign, NobodyRegistered) {
  Assignment a = assign_cores(4, 1, {});
  EXPECT_EQ(owners(a), (std::vector<int>{-1, -1, -1, -1}));
  for (const auto& c : a.cores) EXPECT_EQ(c.eligible, 0u);
}

TEST(DaemonAssign, BeAppsShareEveryCore) {
  std::vector<AppDemand> apps = {{0, AppClass::be, 1}, {1, AppClass::be, 1}};
  Assignment a = assign_cores(3, 2, apps);
  EXPECT_EQ(owners(a), (std::vector<int>{0, 1, 0})) << "min-lc-cores only applies while an LC app is registered";
  for (const auto& c : a.cores) {
    EXPECT_EQ(c.eligible, 0b11u);
    EXPECT_FALSE(c.lc);
  }
}

TEST(DaemonAssign, LcFirstByDemandThenBe) {
  std::vector<AppDemand> apps = {{3, AppClass::be, 4}, {5, AppClass::lc, 2}};
  Assignment a = assign_cores(4, 0, apps);
  EXPECT_EQ(owners(a), (std::vector<int>{5, 5, 3, 3}));
  EXPECT_TRUE(a.cores[0].lc && a.cores[1].lc);
  EXPECT_FALSE(a.cores[2].lc);
  EXPECT_EQ(a.eligible_cores(5), (std::vector<std::uint32_t>{0, 1, 2, 3})) << "LC priority on every core";
  EXPECT_EQ(a.eligible_cores(3), (std::vector<std::uint32_t>{0, 1, 2, 3})) << "no reserve: LC cores go back to BE";
}

TEST(DaemonAssign, MinLcCoresRaisesTheLcShare) {
  std::vector<AppDemand> apps = {{0, AppClass::lc, 1}, {1, AppClass::be, 1}};
  Assignment a = assign_cores(4, 3, apps);
  EXPECT_EQ(owners(a), (std::vector<int>{0, 0, 0, 1}));
  EXPECT_EQ(a.eligible_cores(1), (std::vector<std::uint32_t>{3})) << "the 3 reserved LC cores are not lent to BE";
  EXPECT_EQ(a.eligible_cores(0), (std::vector<std::uint32_t>{0, 1, 2, 3}));
}

TEST(DaemonAssign, LcDemandCanTakeEveryCore) {
  std::vector<AppDemand> apps = {{0, AppClass::lc, 8}, {1, AppClass::be, 1}};
  Assignment a = assign_cores(2, 0, apps);
  EXPECT_EQ(owners(a), (std::vector<int>{0, 0}));
  EXPECT_EQ(a.eligible_cores(1), (std::vector<std::uint32_t>{0, 1})) << "granted none, but borrows idle LC cores";
}

TEST(DaemonAssign, WithoutBeAppsLcAppsGetTheLeftovers) {
  std::vector<AppDemand> apps = {{0, AppClass::lc, 1}, {1, AppClass::lc, 1}};
  Assignment a = assign_cores(5, 0, apps);
  EXPECT_EQ(owners(a), (std::vector<int>{0, 1, 0, 1, 0}));
}

TEST(DaemonAssign, StarvedLcAppsShareTheLcCores) {
  std::vector<AppDemand> apps = {{0, AppClass::lc, 2}, {1, AppClass::lc, 1}, {2, AppClass::be, 1}};
  Assignment a = assign_cores(2, 0, apps);
  EXPECT_EQ(owners(a), (std::vector<int>{0, 0}));
  EXPECT_EQ(a.eligible_cores(1), (std::vector<std::uint32_t>{0, 1}));
  EXPECT_EQ(a.eligible_cores(2), (std::vector<std::uint32_t>{0, 1}));
}

TEST(DaemonAssign, SixteenAppsOnTwoCores) {
  std::vector<AppDemand> apps;
  for (std::uint32_t i = 0; i < kMaxApps; ++i) apps.push_back({i, i % 4 == 0 ? AppClass::lc : AppClass::be, 1});
  Assignment a = assign_cores(2, 0, apps);
  for (const auto& c : a.cores) {
    ASSERT_GE(c.owner, 0);
    EXPECT_TRUE(c.eligible & (1u << c.owner));
  }
  EXPECT_TRUE(a.eligible_cores(kMaxApps).empty());
}

TEST(DaemonAssign, MinLcReserveKeepsBeOffOnlyWhileAnLcAppExists) {
  std::vector<AppDemand> apps = {{0, AppClass::lc, 1}, {1, AppClass::be, 1}, {2, AppClass::be, 1}};
  Assignment a = assign_cores(3, 1, apps);
  EXPECT_EQ(a.cores[0].eligible, 0b001u) << "core 0 is the LC reserve";
  EXPECT_EQ(a.cores[1].eligible, 0b111u);
  EXPECT_EQ(a.cores[2].eligible, 0b111u);
}

}  // namespace
