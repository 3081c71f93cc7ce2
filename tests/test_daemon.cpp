// test_daemon.cpp - skyloftd with real processes: the daemon binary on a temporary socket, forked apps
// registering, bad messages and bad peers refused while others are served, kill -9 of apps, id reuse,
// and the daemon killed and restarted under running apps.
#include <gtest/gtest.h>

#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <set>

#include "child_process.hpp"
#include "daemon_test_util.hpp"
#include "multiapp/shm_layout.hpp"

namespace {

using namespace daemontest;
using ma::AppClass;
using ma::ErrorCode;
using Bytes = std::vector<std::uint8_t>;

Bytes header(std::uint16_t type, std::uint32_t length, std::uint32_t magic = ma::kMagic, std::uint16_t version = ma::kVersion) {
  Bytes b;
  for (int i = 0; i < 4; ++i) b.push_back((magic >> (8 * i)) & 0xff);
  b.push_back(version & 0xff);
  b.push_back(version >> 8);
  b.push_back(type & 0xff);
  b.push_back(type >> 8);
  for (int i = 0; i < 4; ++i) b.push_back((length >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) b.push_back(0);
  return b;
}

Bytes register_bytes(std::uint8_t cls, const std::string& name, std::uint32_t pid, std::size_t extra = 0) {
  Bytes body = {cls, static_cast<std::uint8_t>(name.size()), 1, 0};
  for (int i = 0; i < 4; ++i) body.push_back((pid >> (8 * i)) & 0xff);
  body.insert(body.end(), name.begin(), name.end());
  body.insert(body.end(), extra, 'x');
  Bytes m = header(static_cast<std::uint16_t>(ma::MsgType::register_app), static_cast<std::uint32_t>(body.size()));
  m.insert(m.end(), body.begin(), body.end());
  return m;
}

ma::ClientOptions client_opts(const Daemon& d, std::string name, AppClass cls = AppClass::be, int demand = 1) {
  return ma::ClientOptions{d.socket(), std::move(name), cls, static_cast<std::uint16_t>(demand), 5000 * kSlow};
}

// ---- the binary's command line ----

TEST(DaemonBinary, HelpAndVersion) {
  RunResult h = run_program({SKYLOFTD_PATH, "--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("--allow-uid"), std::string::npos) << h.out;
  RunResult v = run_program({SKYLOFTD_PATH, "--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("skyloftd ", 0), 0u) << v.out;
}

TEST(DaemonBinary, EveryBadOptionExitsTwoWithAReason) {
  TempDir dir;
  const std::string sock = dir.path() + "/s.sock";
  const int bad_core = static_cast<int>(sysconf(_SC_NPROCESSORS_CONF));  // one past the last core
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  } cases[] = {
      {{"--bogus"}, "unknown option '--bogus'"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{"--cores"}, "option --cores needs a value"},
      {{"--cores", "3-1"}, "range 3-1 is reversed"},
      {{"--cores", "x"}, "'x' is not a core number"},
      {{"--cores", std::to_string(bad_core)}, "core " + std::to_string(bad_core) + " is out of range"},
      {{"--cores", "5000"}, "out of range"},
      {{"--min-lc-cores", "99"}, "--min-lc-cores: 99 is out of range"},
      {{"--cores", "0", "--min-lc-cores", "2"}, "more than the 1 managed cores"},
      {{"--min-lc-cores", "-1"}, "'-1' is not a number"},
      {{"--allow-uid", "no-such-user-here"}, "neither a uid nor a known user name"},
      {{"--allow-uid", "0,,1"}, "empty element"},
      {{"--allow-gid", "no-such-group-here"}, "neither a gid nor a known group name"},
      {{"--message-timeout-ms", "0"}, "out of range"},
      {{"--log-level", "loud"}, "'loud' is not one of"},
      {{"--socket="}, "--socket: empty path"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {SKYLOFTD_PATH, "--socket", sock};
    args.insert(args.end(), c.args.begin(), c.args.end());
    RunResult r = run_program(args);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("skyloftd: error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << "stderr '" << r.err << "' should mention '" << c.needle << "'";
  }
}

TEST(DaemonBinary, LogLinesCarryALevel) {
  Daemon d;
  ma::DaemonClient c(client_opts(d, "logged"));
  EXPECT_NE(d.log().find("skyloftd: info: registered app 0 'logged'"), std::string::npos) << d.log();
}

// ---- registration ----

TEST(Daemon, NoDaemonGivesAClearError) {
  TempDir dir;
  const std::string sock = dir.path() + "/none.sock";
  try {
    ma::DaemonClient c(ma::ClientOptions{sock, "lonely", AppClass::be, 1, 1000});
    FAIL() << "registered without a daemon";
  } catch (const ma::DaemonError& e) {
    EXPECT_EQ(std::string(e.what()), "skyloft: cannot reach skyloftd at " + sock +
                                         ": No such file or directory (is skyloftd running?)");
  }
}

TEST(Daemon, TwelveAppsRegisterAtOnce) {
  Daemon d;
  std::vector<std::unique_ptr<AppProcess>> apps;
  for (int i = 0; i < 12; ++i) {
    apps.push_back(std::make_unique<AppProcess>(d.socket(), fmt::format("app{}", i), i % 3 == 0 ? AppClass::lc : AppClass::be));
  }
  std::set<std::uint32_t> ids;
  for (auto& a : apps) {
    ASSERT_TRUE(a->ok()) << a->first_line() << "\n" << d.log();
    ids.insert(a->id());
  }
  EXPECT_EQ(ids.size(), 12u) << "app ids must be distinct";
  ma::DaemonState st = ma::query_daemon(d.socket());
  EXPECT_EQ(st.reply.napps, 12);
  ma::ControlSnapshot snap;
  ASSERT_TRUE(ma::read_control(st.region.control(), snap));
  EXPECT_EQ(snap.napps, 12u);
  std::set<std::string> names;
  for (auto& a : apps) {
    const ma::AppSnapshot& e = snap.apps[a->id()];
    EXPECT_EQ(e.state, ma::AppState::registered);
    EXPECT_EQ(e.pid, static_cast<std::uint32_t>(a->pid()));
    names.insert(e.name);
    const ma::AppDescriptor* desc = st.region.app(a->id());
    ASSERT_NE(desc, nullptr);
    EXPECT_EQ(desc->run_state.load(), static_cast<std::uint32_t>(ma::AppRunState::running));
    EXPECT_EQ(desc->app_class.load(), static_cast<std::uint32_t>(e.app_class));
    EXPECT_EQ(desc->generation.load(), e.generation);
  }
  EXPECT_EQ(names.size(), 12u);
  // Every core has exactly one granted owner, and it is eligible there.
  for (std::uint32_t i = 0; i < snap.ncores; ++i) {
    auto o = ma::unpack_owner(snap.cores[i].grant);
    ASSERT_TRUE(o.has_value()) << "core index " << i << " has no owner";
    EXPECT_TRUE(snap.cores[i].eligible & (1u << o->app_id));
  }
  for (auto& a : apps) EXPECT_EQ(a->command('u'), "unregistered");
  ASSERT_TRUE(wait_for(st.region, [](const ma::ControlSnapshot& s) { return s.napps == 0; }, 5s * kSlow));
}

TEST(Daemon, AllSlotsTakenIsRefused) {
  Daemon d;
  std::vector<std::unique_ptr<ma::DaemonClient>> clients;
  for (std::uint32_t i = 0; i < ma::kMaxApps; ++i) clients.push_back(std::make_unique<ma::DaemonClient>(client_opts(d, fmt::format("a{}", i))));
  try {
    ma::DaemonClient extra(client_opts(d, "one-too-many"));
    FAIL() << "a 17th app registered";
  } catch (const ma::DaemonError& e) {
    EXPECT_NE(std::string(e.what()).find("no_free_slot: all 16 app slots are taken"), std::string::npos) << e.what();
  }
  clients.pop_back();
  EXPECT_NO_THROW(ma::DaemonClient again(client_opts(d, "now-fits")));
}

TEST(Daemon, LcAppsGetCoresFirst) {
  if (test_cores(2).size() < 2) GTEST_SKIP() << "needs 2 cores";
  Daemon d({"--min-lc-cores", "1"});
  ma::DaemonClient be(client_opts(d, "batch", AppClass::be));
  EXPECT_EQ(be.granted_cores().size(), 2u) << "alone, a BE app shares every core";
  ma::DaemonClient lc(client_opts(d, "server", AppClass::lc, 1));
  EXPECT_EQ(lc.granted_cores().size(), 2u) << "LC priority on every core (lcbe)";
  ma::ControlSnapshot snap;
  ASSERT_TRUE(ma::read_control(lc.region().control(), snap));
  ASSERT_EQ(snap.ncores, 2u);
  EXPECT_EQ(snap.cores[0].grant, ma::pack_owner(lc.app_id(), lc.generation())) << "the LC app is granted a core first";
  std::vector<int> be_now = be.current_cores();
  ASSERT_EQ(be_now.size(), 1u);
  EXPECT_NE(be_now[0], static_cast<int>(snap.cores[0].cpu)) << "the reserved LC core is not shared with BE apps";
  lc.unregister();
  EXPECT_EQ(be.current_cores().size(), 2u);
}

TEST(Daemon, DescriptorsOfOtherAppsAreReadOnly) {
  Daemon d;
  ma::DaemonClient a(client_opts(d, "a"));
  ma::DaemonClient b(client_opts(d, "b"));
  a.report_tasks(41);
  const ma::AppDescriptor* seen = b.region().app(a.app_id());
  ASSERT_NE(seen, nullptr);
  EXPECT_EQ(seen->tasks.load(), 41u);
  void* page = const_cast<ma::AppDescriptor*>(seen);
  EXPECT_NE(mprotect(page, ma::kAppFileSize, PROT_READ | PROT_WRITE), 0) << "b could make a's descriptor writable";
}

// ---- bad messages and bad peers ----

TEST(Daemon, BadMessagesGetAnErrorReplyAndAClosedConnection) {
  Daemon d({"--message-timeout-ms", std::to_string(300 * kSlow)});
  ma::DaemonClient good(client_opts(d, "bystander"));
  const std::uint32_t me = static_cast<std::uint32_t>(getpid());
  Bytes unregister_other = header(static_cast<std::uint16_t>(ma::MsgType::unregister_app), 8);
  unregister_other.insert(unregister_other.end(), {9, 0, 0, 0, 1, 0, 0, 0});
  Bytes reply_type = ma::encode(ma::Message(ma::UnregisteredReply{1, 1}));
  Bytes half_header = header(3, 0);
  half_header.resize(7);
  Bytes half_body = register_bytes(0, "slow", me);
  half_body.resize(half_body.size() - 2);
  struct Case {
    const char* what;
    Bytes bytes;
    ErrorCode code;
  } cases[] = {
      {"wrong magic", header(3, 0, 0x12345678), ErrorCode::bad_magic},
      {"wrong version", header(3, 0, ma::kMagic, 9), ErrorCode::bad_version},
      {"bad type", header(0x77, 0), ErrorCode::bad_type},
      {"oversized", header(static_cast<std::uint16_t>(ma::MsgType::register_app), 1 << 20), ErrorCode::oversized},
      {"too short for its type", header(static_cast<std::uint16_t>(ma::MsgType::unregister_app), 3), ErrorCode::bad_length},
      {"a peer that says nothing", {}, ErrorCode::timeout},
      {"truncated header", half_header, ErrorCode::timeout},
      {"truncated body", half_body, ErrorCode::timeout},
      {"bad enum", register_bytes(7, "app", me), ErrorCode::bad_enum},
      {"bad name", register_bytes(0, "no spaces", me), ErrorCode::bad_name},
      {"overlong name", register_bytes(0, std::string(33, 'n'), me), ErrorCode::oversized},
      {"trailing bytes", register_bytes(0, "app", me, 2), ErrorCode::trailing_bytes},
      {"a reply sent to the daemon", reply_type, ErrorCode::unexpected},
      {"someone else's pid", register_bytes(0, "liar", 1), ErrorCode::pid_mismatch},
      {"unregister without registering", unregister_other, ErrorCode::not_registered},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    RawPeer peer(d.socket());
    if (!c.bytes.empty()) peer.send(c.bytes);
    ma::Received r = peer.receive();
    ASSERT_TRUE(r.message.ok()) << r.message.error.message << "\n" << d.log();
    const auto* e = std::get_if<ma::ErrorReply>(&*r.message.value);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->code, c.code) << ma::error_code_name(e->code) << ": " << e->text;
    EXPECT_FALSE(e->text.empty());
    EXPECT_TRUE(peer.closed_by_daemon()) << "the connection stays open after an error reply";
    // Everyone else is still served: the bystander's connection is up, and a query works.
    EXPECT_FALSE(good.connection_lost());
    EXPECT_EQ(ma::query_daemon(d.socket()).reply.napps, 1);
  }
  // A second register on one connection.
  RawPeer twice(d.socket());
  twice.send(register_bytes(1, "once", me));
  ma::Received first = twice.receive();
  ASSERT_TRUE(first.message.ok());
  ASSERT_TRUE(std::holds_alternative<ma::RegisteredReply>(*first.message.value));
  twice.send(register_bytes(1, "twice", me));
  ma::Received second = twice.receive();
  ASSERT_TRUE(second.message.ok());
  ASSERT_TRUE(std::holds_alternative<ma::ErrorReply>(*second.message.value));
  EXPECT_EQ(std::get<ma::ErrorReply>(*second.message.value).code, ErrorCode::already_registered);
  EXPECT_TRUE(twice.closed_by_daemon());
  EXPECT_FALSE(good.connection_lost());
}

TEST(Daemon, AHalfMessageDoesNotWedgeTheDaemon) {
  Daemon d({"--message-timeout-ms", "20000"});
  RawPeer stalled(d.socket());
  Bytes part = register_bytes(0, "stall", static_cast<std::uint32_t>(getpid()));
  part.resize(10);
  stalled.send(part);
  auto start = Clock::now();
  ma::DaemonClient c(client_opts(d, "unhindered"));
  EXPECT_LT(Clock::now() - start, 5s) << "registration waited for the stalled peer";
  EXPECT_EQ(ma::query_daemon(d.socket()).reply.napps, 1);
}

TEST(Daemon, PeerWithAForeignUidIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch a child to uid 65534";
  Daemon d;
  ma::DaemonClient good(client_opts(d, "owner"));
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t child = fork_test_child();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(out[0]);
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
      write_line(out[1], "setuid failed");
      _exit(1);
    }
    try {
      ma::DaemonClient c(client_opts(d, "intruder"));
      write_line(out[1], "registered");
    } catch (const ma::DaemonError& e) {
      write_line(out[1], e.what());
    }
    _exit(0);
  }
  close(out[1]);
  std::optional<std::string> said = read_line(out[0], 10s * kSlow);
  close(out[0]);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(said.has_value());
  EXPECT_NE(said->find("not_allowed: uid 65534"), std::string::npos) << *said;
  EXPECT_FALSE(good.connection_lost());
  EXPECT_EQ(ma::query_daemon(d.socket()).reply.napps, 1);
}

TEST(Daemon, AllowUidAdmitsAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch a child to uid 65534";
  Daemon d({"--allow-uid", "0,65534"});
  pid_t child = fork_test_child();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    try {
      ma::DaemonClient c(client_opts(d, "guest"));
      _exit(c.registered() ? 0 : 3);
    } catch (const ma::DaemonError&) {
      _exit(1);
    }
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << d.log();
}

// ---- faults ----

TEST(Daemon, KilledAppsCoresReturnWithin100ms) {
  if (test_cores(2).size() < 2) GTEST_SKIP() << "needs 2 cores";
  Daemon d;
  AppProcess lc(d.socket(), "victim-lc", AppClass::lc, 1);
  AppProcess be(d.socket(), "victim-be", AppClass::be, 1);
  ASSERT_TRUE(lc.ok() && be.ok()) << lc.first_line() << " / " << be.first_line();
  // A third app with a writable core table fakes a handoff in flight to the LC app on every core.
  ma::DaemonClient survivor(client_opts(d, "survivor", AppClass::be));
  ma::CoreTable& table = *survivor.region().core_table_rw();
  ma::ControlSnapshot before;
  ASSERT_TRUE(ma::read_control(survivor.region().control(), before));
  const std::uint32_t lc_owner = ma::pack_owner(lc.id(), lc.generation());
  for (std::uint32_t i = 0; i < before.ncores; ++i) table.slots[i].owner.store(lc_owner);

  lc.kill_no_wait();
  auto took = wait_for(survivor.region(), [&](const ma::ControlSnapshot& s) {
    if (s.apps[lc.id()].state != ma::AppState::free) return false;
    for (std::uint32_t i = 0; i < s.ncores; ++i) {
      if (s.cores[i].eligible & (1u << lc.id())) return false;
      if (table.slots[i].owner.load() == lc_owner) return false;  // the in-flight handoff was redirected
      if (ma::unpack_owner(table.slots[i].owner.load()) == std::nullopt) return false;
    }
    return true;
  }, 2s * kSlow);
  lc.reap();
  ASSERT_TRUE(took.has_value()) << d.log();
  std::printf("LC app's cores back after %lld us\n", static_cast<long long>(took->count()));
  EXPECT_LE(took->count(), 100'000 * kSlow) << "cores returned after " << took->count() << " us";

  be.kill_no_wait();
  took = wait_for(survivor.region(), [&](const ma::ControlSnapshot& s) {
    for (std::uint32_t i = 0; i < s.ncores; ++i) {
      auto o = ma::unpack_owner(s.cores[i].grant);
      if (!o || o->app_id != survivor.app_id()) return false;
    }
    return s.apps[be.id()].state == ma::AppState::free;
  }, 2s * kSlow);
  be.reap();
  ASSERT_TRUE(took.has_value()) << d.log();
  std::printf("BE app's cores back after %lld us\n", static_cast<long long>(took->count()));
  EXPECT_LE(took->count(), 100'000 * kSlow);
  EXPECT_EQ(survivor.current_cores().size(), before.ncores) << "the survivor holds every core";
  for (std::uint32_t i = 0; i < before.ncores; ++i) {
    EXPECT_EQ(table.slots[i].owner.load(), ma::pack_owner(survivor.app_id(), survivor.generation()));
  }
}

TEST(Daemon, AppIdsAreReusedWithABumpedGeneration) {
  Daemon d;
  auto first = std::make_unique<AppProcess>(d.socket(), "first", AppClass::be);
  ASSERT_TRUE(first->ok()) << first->first_line();
  const std::uint32_t id = first->id(), gen = first->generation();
  ma::DaemonClient watcher(client_opts(d, "watcher"));
  std::atomic<std::uint32_t>& word = *ma::wake_word(*watcher.region().core_table_rw(), 0, id);
  EXPECT_TRUE(ma::post_wake(word, gen)) << "a wake for the live app is posted";
  first.reset();  // kill -9
  ASSERT_TRUE(wait_for(watcher.region(), [&](const ma::ControlSnapshot& s) { return s.apps[id].state == ma::AppState::free; },
                       2s * kSlow));
  AppProcess second(d.socket(), "second", AppClass::be);
  ASSERT_TRUE(second.ok()) << second.first_line();
  EXPECT_EQ(second.id(), id) << "the lowest free id is reused";
  EXPECT_EQ(second.generation(), gen + 1);
  EXPECT_FALSE(ma::post_wake(word, gen)) << "a stale wake reached the id's next owner";
  EXPECT_TRUE(ma::post_wake(word, gen + 1));
  const ma::AppDescriptor* desc = watcher.region().app(id);
  EXPECT_EQ(desc->generation.load(), gen + 1);
  EXPECT_EQ(desc->pid.load(), static_cast<std::uint32_t>(second.pid())) << "the descriptor was reset for the new owner";

  // The same through unregister on a live connection.
  ma::DaemonClient c(client_opts(d, "cycle"));
  const std::uint32_t cid = c.app_id(), cgen = c.generation();
  c.unregister();
  ma::DaemonClient c2(client_opts(d, "cycle"));
  EXPECT_EQ(c2.app_id(), cid);
  EXPECT_EQ(c2.generation(), cgen + 1);
}

TEST(Daemon, RestartUnderRunningApps) {
  auto d = std::make_unique<Daemon>();
  const std::string sock = d->socket();
  AppProcess a(sock, "steady-a", AppClass::lc);
  AppProcess b(sock, "steady-b", AppClass::be);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string old_epoch = a.epoch();

  // The daemon dies: the apps notice, keep running, and keep using the old region.
  EXPECT_EQ(d->stop(SIGKILL), 128 + SIGKILL);
  for (AppProcess* p : {&a, &b}) {
    std::optional<std::string> l = p->command('w');
    ASSERT_TRUE(l.has_value());
    EXPECT_EQ(*l, "lost " + old_epoch + " 7");
  }
  EXPECT_EQ(kill(a.pid(), 0), 0) << "an app died with the daemon";

  // A new daemon on the same (stale) socket; the apps re-register into its new region.
  d->start();
  EXPECT_NE(d->log().find("removing stale socket"), std::string::npos) << d->log();
  for (AppProcess* p : {&a, &b}) {
    std::optional<std::string> l = p->command('r');
    ASSERT_TRUE(l.has_value());
    ASSERT_EQ(l->rfind("ok ", 0), 0u) << *l;
    p->adopt(*l);
    EXPECT_NE(p->epoch(), old_epoch) << "re-registered into the old region";
  }
  ma::DaemonState st = ma::query_daemon(sock);
  EXPECT_EQ(st.reply.napps, 2);
  EXPECT_EQ(st.reply.daemon_pid, static_cast<std::uint32_t>(d->pid()));
}

TEST(Daemon, SigtermExitsCleanlyAndRemovesTheSocket) {
  Daemon d;
  ma::DaemonClient c(client_opts(d, "bye"));
  EXPECT_EQ(d.stop(SIGTERM), 0);
  struct stat st {};
  EXPECT_NE(lstat(d.socket().c_str(), &st), 0) << "socket left behind";
  auto deadline = Clock::now() + 5s;
  while (!c.connection_lost() && Clock::now() < deadline) std::this_thread::sleep_for(2ms);
  EXPECT_TRUE(c.connection_lost());
  EXPECT_NO_THROW(c.unregister()) << "unregistering after the daemon left is a no-op";
}

TEST(Daemon, SecondDaemonOnTheSameSocketIsRefused) {
  Daemon d;
  RunResult r = run_program({SKYLOFTD_PATH, "--socket", d.socket()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("another skyloftd is already listening on " + d.socket()), std::string::npos) << r.err;
}

TEST(Daemon, ConfigNamesTheDaemonSocket) {
  setenv("SKYLOFT_DAEMON", "/some/where.sock", 1);
  EXPECT_EQ(skyloft::Config::from_env().daemon, std::optional<std::string>("/some/where.sock"));
  setenv("SKYLOFT_DAEMON", "  ", 1);
  try {
    skyloft::Config::from_env();
    ADD_FAILURE() << "an empty SKYLOFT_DAEMON was accepted";
  } catch (const skyloft::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("SKYLOFT_DAEMON is set but empty"), std::string::npos) << e.what();
  }
  unsetenv("SKYLOFT_DAEMON");
  EXPECT_FALSE(skyloft::Config::from_env().daemon.has_value());
}

}  // namespace

namespace {

// ---- skyloft-stat ----

TEST(SkyloftStat, NoDaemonIsAClearErrorAndExitOne) {
  TempDir dir;
  const std::string sock = dir.path() + "/absent.sock";
  RunResult r = run_program({SKYLOFT_STAT_PATH, "--socket", sock});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "skyloft-stat: cannot reach skyloftd at " + sock + ": No such file or directory (is skyloftd running?)\n");
}

TEST(SkyloftStat, BadOptionsExitTwo) {
  for (std::vector<std::string> args : {std::vector<std::string>{"--interval", "fast"}, {"--interval", "0"},
                                        {"--count", "0"}, {"--frobnicate"}, {"--socket"}}) {
    args.insert(args.begin(), SKYLOFT_STAT_PATH);
    RunResult r = run_program(args);
    EXPECT_EQ(r.exit_code, 2) << args[1];
    EXPECT_EQ(r.err.rfind("skyloft-stat: error: ", 0), 0u) << r.err;
  }
}

TEST(SkyloftStat, JsonSnapshotShowsAppsAndCpuShare) {
  Daemon d;
  AppProcess busy(d.socket(), "busy", AppClass::lc);
  AppProcess idle(d.socket(), "idle", AppClass::be);
  ASSERT_TRUE(busy.ok() && idle.ok());
  ASSERT_EQ(busy.command('b'), "busy");
  RunResult r = run_program({SKYLOFT_STAT_PATH, "--socket", d.socket(), "--json", "--interval", "0.5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& j = r.out;
  EXPECT_NE(j.find("\"napps\":2"), std::string::npos) << j;
  EXPECT_NE(j.find("\"name\":\"busy\",\"class\":\"lc\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"name\":\"idle\",\"class\":\"be\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"tasks\":3,\"runqueue\":2,\"switches_in\":1"), std::string::npos) << j;
  // busy held one of the managed cores the whole interval: its share is 1/ncores (generous bounds: the
  // reporter sleeps in 1 ms steps on a loaded machine).
  std::size_t at = j.find("\"name\":\"busy\"");
  std::size_t share_at = j.find("\"cpu_share\":", at);
  ASSERT_NE(share_at, std::string::npos) << j;
  double share = std::stod(j.substr(share_at + 12));
  const double expected = 1.0 / static_cast<double>(test_cores(2).size());
  EXPECT_GT(share, expected * 0.5) << j;
  EXPECT_LT(share, expected * 1.3) << j;
  std::size_t idle_at = j.find("\"cpu_share\":", j.find("\"name\":\"idle\""));
  EXPECT_EQ(j.substr(idle_at + 12, 6), "0.0000") << j;
}

TEST(SkyloftStat, TableRefreshesAndNamesTheHolders) {
  Daemon d;
  AppProcess a(d.socket(), "holder", AppClass::lc);
  ASSERT_TRUE(a.ok());
  RunResult r = run_program({SKYLOFT_STAT_PATH, "--socket", d.socket(), "--count", "3", "--interval", "0.05"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::size_t tables = 0;
  for (std::size_t p = r.out.find("CORE "); p != std::string::npos; p = r.out.find("CORE ", p + 1)) ++tables;
  EXPECT_EQ(tables, 3u) << r.out;
  EXPECT_NE(r.out.find(fmt::format("{} holder", a.id())), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("running"), std::string::npos) << r.out;
}

}  // namespace
