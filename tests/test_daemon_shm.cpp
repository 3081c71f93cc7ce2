// test_daemon_shm.cpp - the shared region: packed words, bounds-checked accessors, sealing, the protection
// rule (read-only descriptions cannot be made writable), the checker, and a shared futex across processes.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "child_process.hpp"
#include "multiapp/shm_layout.hpp"
#include "multiapp/shm_region.hpp"

namespace {

using namespace skyloft::multiapp;

std::vector<Fd> dup_all(const std::vector<int>& fds) {
  std::vector<Fd> out;
  for (int fd : fds) out.emplace_back(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  return out;
}

TEST(DaemonShm, OwnerWordsCarryTheGeneration) {
  std::uint32_t w = pack_owner(3, 7);
  auto o = unpack_owner(w);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->app_id, 3u);
  EXPECT_EQ(o->generation24, 7u);
  EXPECT_TRUE(owner_is(w, 3, 7));
  EXPECT_FALSE(owner_is(w, 3, 8)) << "the same id of a later generation is another owner";
  EXPECT_FALSE(unpack_owner(0).has_value());
  EXPECT_FALSE(unpack_owner(kMaxApps + 1).has_value()) << "a corrupted id must not index anything";
  EXPECT_FALSE(unpack_owner(0xff).has_value());
}

TEST(DaemonShm, StaleWakesAreRefused) {
  std::atomic<std::uint32_t> word{wake_word_initial(5)};
  EXPECT_TRUE(post_wake(word, 5));
  EXPECT_EQ(word.load(), wake_tag(5) | 1);
  word.store(wake_word_initial(6));  // the daemon reused the id
  EXPECT_FALSE(post_wake(word, 5)) << "a wake meant for generation 5 reached generation 6";
  EXPECT_EQ(word.load(), wake_word_initial(6));
  word.store(wake_tag(6) | 0xffffff);
  EXPECT_TRUE(post_wake(word, 6));
  EXPECT_EQ(word.load(), wake_tag(6)) << "the sequence wraps inside its 24 bits";
}

TEST(DaemonShm, AccessorsCheckEveryIndex) {
  DaemonRegion region({0, 1}, 0, static_cast<std::uint32_t>(getpid()), 1);
  ControlTable& c = region.control();
  CoreTable& t = region.core_table();
  EXPECT_NE(core_slot(t, 1), nullptr);
  EXPECT_EQ(core_slot(t, 2), nullptr);
  EXPECT_EQ(core_grant(c, 2), nullptr);
  EXPECT_EQ(wake_word(t, 0, kMaxApps), nullptr);
  EXPECT_NE(wake_word(t, 0, kMaxApps - 1), nullptr);
  EXPECT_EQ(app_entry(c, kMaxApps), nullptr);
  EXPECT_EQ(app_core_stats(region.app(0), kMaxManagedCores), nullptr);
  EXPECT_EQ(core_index_of(c, 1), std::optional<std::uint32_t>(1));
  EXPECT_EQ(core_index_of(c, 5), std::nullopt);
  t.ncores = 100000;  // a corrupted count
  EXPECT_EQ(managed_cores(t), 0u);
  EXPECT_EQ(core_slot(t, 0), nullptr);
  t.ncores = 2;
}

TEST(DaemonShm, FilesAreSealedAgainstResizing) {
  DaemonRegion region({0}, 0, 1, 1);
  for (int fd : region.state_fds()) {
    int seals = fcntl(fd, F_GET_SEALS);
    ASSERT_GE(seals, 0);
    EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  }
  int rw = region.registered_fds(0)[kFdSelf];
  EXPECT_NE(ftruncate(rw, 0), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(ftruncate(rw, 1 << 20), 0);
  EXPECT_NE(fcntl(rw, F_ADD_SEALS, F_SEAL_WRITE), 0) << "F_SEAL_SEAL forbids further seals";
}

TEST(DaemonShm, ReadOnlyDescriptionsCannotBecomeWritable) {
  DaemonRegion region({0, 1}, 0, 1, 1);
  std::vector<int> fds = region.registered_fds(2);
  int other = fds[kRegisteredFdAppsBase + 5];  // app 5's descriptor, as app 2 receives it
  void* p = mmap(nullptr, kAppFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, other, 0);
  EXPECT_EQ(p, MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
  void* r = mmap(nullptr, kAppFileSize, PROT_READ, MAP_SHARED, other, 0);
  ASSERT_NE(r, MAP_FAILED);
  EXPECT_NE(mprotect(r, kAppFileSize, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(errno, EACCES);
  munmap(r, kAppFileSize);
  EXPECT_EQ(mmap(nullptr, kControlFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fds[kFdControl], 0), MAP_FAILED)
      << "the control file is the daemon's";
}

TEST(DaemonShm, AnotherUidCannotReopenADescriptionForWriting) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534";
  DaemonRegion region({0}, 0, 1, 1);
  int other = region.registered_fds(0)[kRegisteredFdAppsBase + 1];
  pid_t child = fork_test_child();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    std::string path = "/proc/self/fd/" + std::to_string(other);
    int fd = open(path.c_str(), O_RDWR);
    _exit(fd < 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "uid 65534 reopened a read-only descriptor file for writing";
}

TEST(DaemonShm, MappedRegionSeesTheDaemonsWritesAndWritesItsOwnDescriptor) {
  DaemonRegion region({0, 1}, 1, 1, 42);
  MappedRegion app = MappedRegion::from_registered(dup_all(region.registered_fds(3)), 3);
  EXPECT_EQ(app.control().epoch, 42u);
  EXPECT_EQ(managed_cores(app.control()), 2u);
  ASSERT_NE(app.self(), nullptr);
  app.self()->tasks.store(17);
  app_core_stats(*app.self(), 1)->switches_in.store(9);
  EXPECT_EQ(region.app(3).tasks.load(), 17u);
  EXPECT_EQ(region.app(3).cores[1].switches_in.load(), 9u);
  EXPECT_EQ(app.app(3)->tasks.load(), 17u) << "the read-only view of oneself shows the same page";
  region.control().cores[0].grant.store(pack_owner(3, 1));
  EXPECT_EQ(app.control().cores[0].grant.load(), pack_owner(3, 1));

  MappedRegion stat = MappedRegion::from_state(dup_all(region.state_fds()));
  EXPECT_EQ(stat.self(), nullptr);
  EXPECT_EQ(stat.core_table_rw(), nullptr);
  EXPECT_EQ(stat.app(3)->tasks.load(), 17u);
  EXPECT_EQ(stat.app(kMaxApps), nullptr);
}

TEST(DaemonShm, MappingRefusesUnsealedOrWrongSizedFiles) {
  Fd plain(memfd_create("plain", MFD_CLOEXEC));
  ASSERT_TRUE(plain);
  ASSERT_EQ(ftruncate(plain.get(), kAppFileSize), 0);
  try {
    map_received_file(plain.get(), kAppFileSize, false, "test file");
    FAIL() << "mapped an unsealed file";
  } catch (const RegionError& e) {
    EXPECT_NE(std::string(e.what()).find("not sealed"), std::string::npos) << e.what();
  }
  SharedFile small = create_shared_file("small", 4096);
  try {
    map_received_file(small.rw.get(), kAppFileSize, false, "test file");
    FAIL() << "mapped a file of the wrong size";
  } catch (const RegionError& e) {
    EXPECT_NE(std::string(e.what()).find("4096 bytes, expected 8192"), std::string::npos) << e.what();
  }
  DaemonRegion region({0}, 0, 1, 1);
  std::vector<Fd> fds = dup_all(region.registered_fds(0));
  fds.pop_back();
  EXPECT_THROW(MappedRegion::from_registered(std::move(fds), 0), RegionError);
}

TEST(DaemonShm, CorruptHeadersAreRefused) {
  DaemonRegion region({0}, 0, 1, 1);
  region.control().version = 99;
  try {
    MappedRegion::from_registered(dup_all(region.registered_fds(0)), 0);
    FAIL() << "accepted region version 99";
  } catch (const RegionError& e) {
    EXPECT_NE(std::string(e.what()).find("region version 99"), std::string::npos) << e.what();
  }
  region.control().version = kRegionVersion;
  region.control().ncores = 65;
  EXPECT_THROW(MappedRegion::from_registered(dup_all(region.registered_fds(0)), 0), RegionError);
}

TEST(DaemonShm, CheckerCountsTwoActiveWorkers) {
  DaemonRegion region({0}, 0, 1, 1);
  CoreSlot& s = *core_slot(region.core_table(), 0);
  EXPECT_TRUE(checker_enter(s));
  EXPECT_FALSE(checker_enter(s));
  EXPECT_EQ(s.violations.load(), 1u);
  checker_leave(s);
  checker_leave(s);
  EXPECT_TRUE(checker_enter(s));
  checker_leave(s);
}

TEST(DaemonShm, ReadControlGivesAConsistentCopy) {
  DaemonRegion region({4, 6}, 0, 1, 1);
  ControlTable& c = region.control();
  c.apps[2].state.store(static_cast<std::uint32_t>(AppState::registered));
  c.apps[2].name[0].store('x');
  c.napps.store(1);
  ControlSnapshot snap;
  ASSERT_TRUE(read_control(c, snap));
  EXPECT_EQ(snap.ncores, 2u);
  EXPECT_EQ(snap.cores[1].cpu, 6u);
  EXPECT_EQ(snap.apps[2].state, AppState::registered);
  EXPECT_STREQ(snap.apps[2].name, "x");
  c.seq.store(1);  // a daemon that died mid-publication
  EXPECT_FALSE(read_control(c, snap, 10));
}

TEST(DaemonShm, SharedFutexWakesAnotherProcess) {
  DaemonRegion region({0}, 0, 1, 1);
  MappedRegion app = MappedRegion::from_registered(dup_all(region.registered_fds(1)), 1);
  std::atomic<std::uint32_t>& word = *wake_word(*app.core_table_rw(), 0, 1);
  const std::uint32_t before = word.load();
  pid_t child = fork_test_child();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child sleeps on its word (shared futex) until the parent posts a wake-up.
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (word.load() == before && std::chrono::steady_clock::now() < end) futex_wait_shared(word, before, 1'000'000'000);
    _exit(word.load() != before ? 0 : 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::atomic<std::uint32_t>& daemon_word = region.core_table().slots[0].wake[1];
  ASSERT_TRUE(post_wake(daemon_word, 1));
  futex_wake_shared(daemon_word, 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
