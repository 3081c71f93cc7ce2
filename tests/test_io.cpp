// test_io.cpp - task-aware I/O (io.hpp) over both backends: TCP echo, error paths (refused, reset, EPIPE,
// short reads, closed peers, deadlines), fd readiness, files, UDP, 1000 concurrent connections, parking in
// the ring, cancellation at shutdown, preemption and stealing with I/O in flight, plain threads.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "skyloft/io.hpp"
#include "skyloft/preempt.hpp"
#include "test_util.hpp"

using namespace skytest;
using namespace std::chrono_literals;
namespace io = skyloft::io;
using skyloft::Config;
using skyloft::Runtime;

namespace {

Config io_config(const std::string& backend, std::size_t workers = 2) {
  Config c;
  c.policy = "fifo";
  c.io_backend = backend;
  auto allowed = skyloft::allowed_cores();
  allowed.resize(std::min(allowed.size(), workers));
  c.cores = skyloft::format_core_list(allowed);
  return c;
}

// A listener on 127.0.0.1 with a free port.
io::TcpListener listen_loopback() {
  auto l = io::TcpListener::bind(io::SocketAddr::loopback(0));
  EXPECT_TRUE(l.ok()) << l.error().message();
  return std::move(l.value());
}
std::uint16_t port_of(const io::TcpListener& l) { return l.local_addr().value().port(); }

// The local port of a socket, or -errno.
int local_port(int fd) {
  sockaddr_storage a{};
  socklen_t n = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) != 0) return -errno;
  return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
}

// Echoes until the peer closes; with `report`, an error before that fails the test (saying which).
void echo_until_eof(io::TcpStream s, bool report = false) {
  char buf[4096];
  for (;;) {
    auto r = s.read(buf, sizeof buf);
    if (!r || r.value() == 0) {
      if (report && !r && r.error() != io::Error::eof) {
        auto peer = s.peer_addr();
        ADD_FAILURE() << "echo read: " << r.error().message() << " (fd " << s.fd() << ", peer "
                      << (peer ? peer->to_string() : peer.error().message()) << ")";
      }
      return;
    }
    if (auto w = s.write_all(buf, r.value()); !w) {
      if (report) ADD_FAILURE() << "echo write: " << w.error().message();
      return;
    }
  }
}

class Io : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (std::string(GetParam()) == "uring" && !io::uring_available()) GTEST_SKIP() << "io_uring unavailable here";
  }
  Config config(std::size_t workers = 2) const { return io_config(GetParam(), workers); }

 private:
  Watchdog watchdog_;
};

}  // namespace

TEST_P(Io, UsesTheConfiguredBackend) {
  Runtime rt(config());
  std::string name;
  rt.block_on([&] { name = io::backend_name(); });
  EXPECT_EQ(name, GetParam());
  EXPECT_STREQ(io::backend_name(), "thread");  // not a task
}

TEST_P(Io, TcpEchoOverLoopback) {
  Runtime rt(config());
  rt.block_on([] {
    io::TcpListener l = listen_loopback();
    const auto port = port_of(l);
    auto server = skyloft::spawn([&] {
      auto s = l.accept();
      ASSERT_TRUE(s.ok()) << s.error().message();
      echo_until_eof(std::move(s.value()));
    });
    auto c = io::TcpStream::connect(io::SocketAddr::loopback(port));
    ASSERT_TRUE(c.ok()) << c.error().message();
    std::vector<char> out(256 * 1024), in(out.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(i * 7 + 3);
    // Writer and reader as two tasks: a 256 KiB echo does not fit the socket buffers one way.
    auto writer = skyloft::spawn([&] {
      auto w = c->write_all(out.data(), out.size());
      EXPECT_TRUE(w.ok()) << w.error().message();
      EXPECT_EQ(w.value(), out.size());
    });
    auto r = c->read_exact(in.data(), in.size());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(in, out);
    writer.join();
    EXPECT_FALSE(c->shutdown(SHUT_WR));
    char extra;
    auto eof = c->read(&extra, 1);
    EXPECT_TRUE(eof.ok());
    EXPECT_EQ(eof.value(), 0u) << "the server closes after our shutdown";
    server.join();
  });
}

// One worker: sends are tried without blocking first (ops.cpp), so a writer that fills the socket must
// still park its task, not its worker, or the reader on that same worker never runs. The sends that went
// through at once and the one the reader's drain let through both arrive, in order.
TEST_P(Io, AWriterThatFillsTheSocketParksItsTaskNotTheWorker) {
  Runtime rt(config(1));
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  io::TcpStream writer_end{io::Fd(sv[0])}, reader_end{io::Fd(sv[1])};
  constexpr std::size_t kBytes = 8 * 1024 * 1024;  // far more than a socket buffer holds
  std::vector<char> out(kBytes), in(kBytes);
  for (std::size_t i = 0; i < kBytes; ++i) out[i] = static_cast<char>(i * 13 + 5);
  rt.block_on([&] {
    std::atomic<bool> writer_parked_while_reading{false};
    std::atomic<bool> writing{false}, written{false};
    auto writer = skyloft::spawn([&] {
      writing = true;
      auto w = writer_end.write_all(out.data(), out.size());
      EXPECT_TRUE(w.ok()) << w.error().message();
      EXPECT_EQ(w.value(), kBytes);
      written = true;
    });
    while (!writing.load()) skyloft::this_task::yield();
    // Only one worker: we run again only because the writer parked on a full socket.
    writer_parked_while_reading = !written.load();
    auto r = reader_end.read_exact(in.data(), in.size());
    ASSERT_TRUE(r.ok()) << r.error().message();
    writer.join();
    EXPECT_TRUE(writer_parked_while_reading.load()) << "the writer finished before the reader ran";
    EXPECT_EQ(in, out);
  });
}

TEST_P(Io, ConnectToAClosedPortIsRefused) {
  Runtime rt(config());
  rt.block_on([] {
    std::uint16_t port;
    {
      io::TcpListener l = listen_loopback();
      port = port_of(l);
    }  // closed
    auto c = io::TcpStream::connect(io::SocketAddr::loopback(port));
    EXPECT_FALSE(c.ok());
    EXPECT_EQ(c.error(), std::errc::connection_refused) << c.error().message();
  });
}

TEST_P(Io, PeerResetMidRequestIsAnErrorCode) {
  Runtime rt(config());
  rt.block_on([] {
    io::TcpListener l = listen_loopback();
    auto server = skyloft::spawn([&] {
      auto s = l.accept();
      ASSERT_TRUE(s.ok());
      char buf[4];
      ASSERT_TRUE(s->read_exact(buf, sizeof buf).ok());
      linger lg{1, 0};  // close with RST
      ASSERT_EQ(setsockopt(s->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
      s->close();
    });
    auto c = io::TcpStream::connect(io::SocketAddr::loopback(port_of(l)));
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c->write_all("half", 4).ok());
    char reply[16];
    auto r = c->read_exact(reply, sizeof reply);  // the rest of the request never comes: reset
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error(), std::errc::connection_reset) << r.error().message();
    EXPECT_EQ(r.value(), 0u);
    server.join();
  });
}

TEST_P(Io, WriteAfterPeerCloseIsEpipeNotSigpipe) {
  Runtime rt(config());
  rt.block_on([] {
    io::TcpListener l = listen_loopback();
    auto server = skyloft::spawn([&] {
      auto s = l.accept();
      ASSERT_TRUE(s.ok());
      s->close();
    });
    auto c = io::TcpStream::connect(io::SocketAddr::loopback(port_of(l)));
    ASSERT_TRUE(c.ok());
    server.join();
    char one = 'x';
    char buf[1];
    ASSERT_EQ(c->read(buf, 1).value(), 0u);  // the peer's FIN
    std::error_code last;
    for (int i = 0; i < 100 && !last; ++i) {  // the first write draws the RST; a later one fails
      last = c->write(&one, 1).error();
      if (!last) skyloft::this_task::sleep_for(1ms);
    }
    EXPECT_EQ(last, std::errc::broken_pipe) << last.message();
  });
}

TEST_P(Io, ShortReadsAndEofBeforeReadExactCompletes) {
  Runtime rt(config());
  rt.block_on([] {
    io::TcpListener l = listen_loopback();
    skyloft::WaitGroup second(1);
    auto server = skyloft::spawn([&] {
      auto s = l.accept();
      ASSERT_TRUE(s.ok());
      ASSERT_TRUE(s->write_all("abcde", 5).ok());
      second.wait();
      ASSERT_TRUE(s->write_all("fg", 2).ok());
      s->close();
    });
    auto c = io::TcpStream::connect(io::SocketAddr::loopback(port_of(l)));
    ASSERT_TRUE(c.ok());
    char buf[100];
    auto r = c->read(buf, sizeof buf);
    ASSERT_TRUE(r.ok());
    EXPECT_GE(r.value(), 1u);
    EXPECT_LE(r.value(), 5u) << "a read returns what has arrived, not the whole buffer";
    std::size_t got = r.value();
    while (got < 5) got += c->read(buf + got, sizeof buf - got).value();
    second.done();
    auto rest = c->read_exact(buf + got, 10);  // only 2 more bytes ever come
    EXPECT_EQ(rest.error(), io::Error::eof) << rest.error().message();
    EXPECT_EQ(rest.value(), 2u);
    EXPECT_EQ(std::string(buf, got + rest.value()), "abcdefg");
    server.join();
  });
}

TEST_P(Io, ReadDeadlineExpiresAndTheStreamStaysUsable) {
  Runtime rt(config());
  rt.block_on([] {
    io::TcpListener l = listen_loopback();
    skyloft::WaitGroup timed_out(1);
    auto server = skyloft::spawn([&] {
      auto s = l.accept();
      ASSERT_TRUE(s.ok());
      timed_out.wait();
      ASSERT_TRUE(s->write_all("late", 4).ok());
      char b;
      s->read(&b, 1);  // until the client closes
    });
    auto c = io::TcpStream::connect(io::SocketAddr::loopback(port_of(l)));
    ASSERT_TRUE(c.ok());
    char buf[8];
    const auto t0 = Clock::now();
    auto r = c->read(buf, sizeof buf, skyloft::deadline_after(50ms));
    const auto waited = Clock::now() - t0;
    EXPECT_EQ(r.error(), std::errc::timed_out) << r.error().message();
    EXPECT_GE(waited, 45ms);
    EXPECT_LT(waited, 50ms + slack());
    timed_out.done();
    auto again = c->read_exact(buf, 4, skyloft::deadline_after(slack()));
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(std::string(buf, 4), "late");
    c->close();
    server.join();
  });
}

TEST_P(Io, AcceptDeadlineExpires) {
  Runtime rt(config());
  rt.block_on([] {
    io::TcpListener l = listen_loopback();
    auto s = l.accept(skyloft::deadline_after(20ms));
    EXPECT_EQ(s.error(), std::errc::timed_out);
  });
}

TEST_P(Io, WaitReadableOnAPipe) {
  Runtime rt(config());
  rt.block_on([] {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    EXPECT_EQ(io::wait_readable(p[0], skyloft::deadline_after(20ms)), std::errc::timed_out);
    EXPECT_FALSE(io::wait_writable(p[1], skyloft::deadline_after(slack())));
    auto writer = skyloft::spawn([&] {
      skyloft::this_task::sleep_for(10ms);
      ASSERT_EQ(write(p[1], "x", 1), 1);
    });
    EXPECT_FALSE(io::wait_readable(p[0], skyloft::deadline_after(slack())));
    char c;
    EXPECT_EQ(read(p[0], &c, 1), 1);
    writer.join();
    close(p[1]);
    EXPECT_FALSE(io::wait_readable(p[0], skyloft::deadline_after(slack()))) << "hang-up counts as readable";
    close(p[0]);
  });
}

TEST_P(Io, FileReadWriteAtOffsetAndFsync) {
  Runtime rt(config());
  const std::string path =
      (std::filesystem::temp_directory_path() / ("skyloft_test_io_" + std::to_string(getpid()))).string();
  rt.block_on([&] {
    auto f = io::File::open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_TRUE(f.ok()) << f.error().message();
    const std::string a = "hello", b = "world";
    ASSERT_EQ(f->write_at(a.data(), a.size(), 0).value(), a.size());
    ASSERT_EQ(f->write_at(b.data(), b.size(), 4096).value(), b.size());
    EXPECT_FALSE(f->fsync());
    char buf[16] = {};
    auto r = f->read_at(buf, sizeof buf, 4096);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(std::string(buf, r.value()), "world") << "a short read at the end of the file";
    r = f->read_at(buf, 5, 0);
    EXPECT_EQ(std::string(buf, r.value()), "hello");
    r = f->read_at(buf, 5, 100000);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.value(), 0u);
    EXPECT_FALSE(f->close());
    auto missing = io::File::open(path + ".missing", O_RDONLY);
    EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory);
  });
  std::filesystem::remove(path);
}

TEST_P(Io, UdpSendToRecvFrom) {
  Runtime rt(config());
  rt.block_on([] {
    auto a = io::UdpSocket::bind(io::SocketAddr::loopback(0));
    auto b = io::UdpSocket::bind(io::SocketAddr::loopback(0));
    ASSERT_TRUE(a.ok() && b.ok());
    const auto b_addr = b->local_addr().value();
    auto receiver = skyloft::spawn([&] {
      char buf[64];
      io::SocketAddr from;
      auto r = b->recv_from(buf, sizeof buf, &from, skyloft::deadline_after(slack()));
      ASSERT_TRUE(r.ok()) << r.error().message();
      EXPECT_EQ(std::string(buf, r.value()), "datagram");
      EXPECT_EQ(from.port(), a->local_addr().value().port());
    });
    skyloft::this_task::sleep_for(5ms);  // the receiver is parked in recv_from
    auto s = a->send_to("datagram", 8, b_addr);
    ASSERT_TRUE(s.ok()) << s.error().message();
    EXPECT_EQ(s.value(), 8u);
    receiver.join();
    char buf[4];
    EXPECT_EQ(b->recv_from(buf, sizeof buf, nullptr, skyloft::deadline_after(10ms)).error(), std::errc::timed_out);
  });
}

TEST_P(Io, AThousandConcurrentConnectionsOnTwoWorkers) {
  const std::size_t n = scaled(1000, 100);
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  const rlim_t need = 2 * n + 256;
  if (lim.rlim_cur < need) {
    lim.rlim_cur = std::min<rlim_t>(need, lim.rlim_max);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  }
  if (lim.rlim_cur < need) GTEST_SKIP() << "RLIMIT_NOFILE hard limit too low";
  Runtime rt(config(2));
  std::atomic<std::size_t> ok{0};
  rt.block_on([&] {
    io::TcpListener l = listen_loopback();
    const auto port = port_of(l);
    auto acceptor = skyloft::spawn([&] {
      for (std::size_t i = 0; i < n; ++i) {
        auto s = l.accept();
        ASSERT_TRUE(s.ok()) << s.error().message();
        skyloft::spawn([s = std::move(s.value())]() mutable { echo_until_eof(std::move(s)); }).detach();
      }
    });
    skyloft::WaitGroup all(n);
    skyloft::Barrier connected(n);
    for (std::size_t i = 0; i < n; ++i) {
      skyloft::spawn([&, i] {
        auto c = io::TcpStream::connect(io::SocketAddr::loopback(port));
        connected.arrive_and_wait();  // all n connections are open at the same time
        if (c.ok()) {
          char msg[32], back[32];
          std::snprintf(msg, sizeof msg, "connection %zu", i);
          if (c->write_all(msg, sizeof msg) && c->read_exact(back, sizeof back) &&
              std::memcmp(msg, back, sizeof msg) == 0) {
            ok.fetch_add(1);
          }
        }
        all.done();
      }).detach();
    }
    all.wait();
    acceptor.join();
  });
  EXPECT_EQ(ok.load(), n);
  EXPECT_TRUE(rt.shutdown().clean());
}

TEST_P(Io, ParkedWorkerWakesOnACompletionAndOnAnUnpark) {
  Config c = config(1);
  c.spin_us = 0;  // park at once: the worker sleeps in its backend while the read is in flight
  Runtime rt(c);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  io::TcpStream reader_end{io::Fd(sv[0])};  // any stream socket works
  std::atomic<bool> read_done{false};
  auto reader = skyloft::spawn([&] {
    char b[3];
    auto r = reader_end.read_exact(b, 3);
    EXPECT_TRUE(r.ok()) << r.error().message();
    read_done = true;
  });
  std::this_thread::sleep_for(30ms);
  // An unpark (a task spawned from outside) must wake the worker parked with I/O in flight.
  std::atomic<bool> ran{false};
  skyloft::spawn([&] { ran = true; }).detach();
  EXPECT_TRUE(thread_wait_until([&] { return ran.load(); }, slack()));
  EXPECT_FALSE(read_done.load());
  std::this_thread::sleep_for(30ms);
  // And a completion must wake it.
  ASSERT_EQ(write(sv[1], "abc", 3), 3);
  EXPECT_TRUE(thread_wait_until([&] { return read_done.load(); }, slack()));
  reader.join();
  close(sv[1]);
  EXPECT_GT(rt.stats().size(), 0u);
}

// uring U6: the kernel holds a completion for the thread that submitted it until that thread enters the
// kernel. A task that runs on and on (no preemption here) keeps its thread out of the kernel: the other,
// spinning worker must nudge it, reap the completion and run the reader, long before the spinner stops.
TEST(IoUring, ACompletionHeldForABusyWorkerIsDeliveredByAnotherOne) {
  if (!io::uring_available()) GTEST_SKIP() << "io_uring unavailable here";
  Watchdog watchdog;
  Config c = io_config("uring", 2);
  c.spin_us = 1'000'000;  // the helping worker stays awake (a parked one polls nothing)
  const auto cores = skyloft::allowed_cores();
  if (cores.size() < 2) GTEST_SKIP() << "needs two cores";
  Runtime rt(c);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  io::TcpStream reader_end{io::Fd(sv[0])};
  std::atomic<int> reader_worker{-1};
  std::atomic<bool> read_done{false}, stop_spinning{false}, read_waited_for_spinner{false};
  skyloft::SpawnOptions on_first;
  on_first.core = cores[0];
  auto reader = skyloft::spawn(
      [&] {
        reader_worker = skyloft::this_task::worker_index();
        char b;
        auto r = reader_end.read_exact(&b, 1);  // parks; submitted to this worker's ring
        EXPECT_TRUE(r.ok()) << r.error().message();
        read_done = true;
      },
      on_first);
  ASSERT_TRUE(thread_wait_until([&] { return reader_worker.load() >= 0; }));
  std::this_thread::sleep_for(20ms);  // the read is in the ring of the reader's worker
  skyloft::SpawnOptions pinned;
  pinned.core = cores[static_cast<std::size_t>(reader_worker.load())];
  pinned.pin = true;
  std::atomic<bool> spinning{false};
  auto spinner = skyloft::spawn(
      [&] {
        spinning = true;
        while (!stop_spinning.load(std::memory_order_relaxed)) {
        }
        read_waited_for_spinner = !read_done.load();
      },
      pinned);
  ASSERT_TRUE(thread_wait_until([&] { return spinning.load(); }));
  std::this_thread::sleep_for(5ms);
  ASSERT_EQ(write(sv[1], "x", 1), 1);
  const bool delivered = thread_wait_until([&] { return read_done.load(); }, slack());
  stop_spinning = true;
  spinner.join();
  reader.join();
  close(sv[1]);
  EXPECT_TRUE(delivered) << "the completion waited for the spinning task";
  EXPECT_FALSE(read_waited_for_spinner.load());
  std::uint64_t nudges = 0;
  for (const auto& w : rt.stats()) nudges += w.io_nudges;
  // Usually nudged; the kernel's own tick may deliver it first (CONFIG_HZ), so this is not asserted.
  std::printf("reader's worker nudged %llu time(s)\n", static_cast<unsigned long long>(nudges));
}

// One worker: a task that runs on (preempt_point() in its loop, nothing queued behind it) keeps the only
// processor from its poll point. The preemption watcher must see the reader's data waiting in that
// processor's poller and preempt the spinner (io/poller.hpp R4); without it the reader ran only after the
// spinner ended.
TEST_P(Io, AReaderBehindARunningTaskIsWokenByThePreemptionWatcher) {
  for (const char* mechanism : {"flag", "dispatcher"}) {
    SCOPED_TRACE(mechanism);
    Config c = config(1);
    c.policy = "rr";
    c.preempt = mechanism;
    c.quantum_us = 30;
    Runtime rt(c);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    io::TcpStream reader_end{io::Fd(sv[0])};
    std::atomic<bool> reading{false}, read_done{false}, spinning{false}, give_up{false}, read_while_spinning{false};
    auto reader = skyloft::spawn([&] {
      reading = true;
      char b;
      auto r = reader_end.read_exact(&b, 1);  // parks: the read waits in the processor's poller
      EXPECT_TRUE(r.ok()) << r.error().message();
      read_done = true;
    });
    ASSERT_TRUE(thread_wait_until([&] { return reading.load(); }));
    std::this_thread::sleep_for(10ms);
    auto spinner = skyloft::spawn([&] {
      spinning = true;
      while (!read_done.load(std::memory_order_relaxed) && !give_up.load(std::memory_order_relaxed)) {
        skyloft::preempt_point();
      }
      read_while_spinning = read_done.load();
    });
    ASSERT_TRUE(thread_wait_until([&] { return spinning.load(); }));
    std::this_thread::sleep_for(5ms);
    ASSERT_EQ(write(sv[1], "x", 1), 1);
    const bool delivered = thread_wait_until([&] { return read_done.load(); }, slack());
    give_up = true;
    spinner.join();
    reader.join();
    close(sv[1]);
    EXPECT_TRUE(delivered) << "the reader stayed asleep while the spinner ran";
    EXPECT_TRUE(read_while_spinning.load()) << "the reader ran only after the spinner ended";
  }
}

TEST_P(Io, ShutdownCancelsAndReportsTasksBlockedInIo) {
  Runtime rt(config());
  io::TcpListener l = listen_loopback();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  std::atomic<int> started{0};
  skyloft::spawn([&] {
    started++;
    auto s = l.accept();  // nobody connects
    ADD_FAILURE() << "accept returned: " << s.error().message();
  }).detach();
  skyloft::spawn([&] {
    started++;
    char b;
    auto r = io::TcpStream(io::Fd(dup(sv[0]))).read(&b, 1);  // nobody writes
    ADD_FAILURE() << "read returned: " << r.error().message();
  }).detach();
  ASSERT_TRUE(thread_wait_until([&] { return started.load() == 2; }, slack()));
  std::this_thread::sleep_for(20ms);
  const auto t0 = Clock::now();
  skyloft::ShutdownReport report = rt.shutdown();
  EXPECT_LT(Clock::now() - t0, slack());
  std::size_t in_io = 0;
  for (const auto& b : report.blocked) in_io += b.reason == skyloft::WaitReason::io;
  EXPECT_EQ(in_io, 2u) << report.describe();
  EXPECT_EQ(report.io_cancelled, 2u);
  EXPECT_NE(report.describe().find("I/O"), std::string::npos);
  close(sv[0]);
  close(sv[1]);
}

TEST_P(Io, PreemptionAndStealingNeverLoseACompletion) {
  Config c = config(2);
  c.preempt = "timer";
  c.quantum_us = 50;
  Runtime rt(c);
  const std::size_t pairs = scaled(40, 8), rounds = scaled(200, 20);
  std::atomic<std::size_t> done_rounds{0};
  std::atomic<bool> stop_spinners{false};
  rt.block_on([&] {
    io::TcpListener l = listen_loopback();
    const auto port = port_of(l);
    // CPU hogs keep both workers contended so the timer preempts tasks, and queues for thieves to steal.
    std::vector<skyloft::JoinHandle> hogs;
    for (int i = 0; i < 4; ++i) {
      hogs.push_back(skyloft::spawn([&] {
        while (!stop_spinners.load(std::memory_order_relaxed)) {
          for (volatile int k = 0; k < 1000; ++k) {
          }
          // ThreadSanitizer: signal mechanisms preempt only at preempt points (see test_preempt.cpp).
          if (kTsan) skyloft::preempt_point();
        }
      }));
    }
    auto acceptor = skyloft::spawn([&] {
      for (std::size_t i = 0; i < pairs; ++i) {
        auto s = l.accept();
        ASSERT_TRUE(s.ok());
        skyloft::spawn([s = std::move(s.value())]() mutable { echo_until_eof(std::move(s), /*report=*/true); }).detach();
      }
    });
    std::vector<skyloft::JoinHandle> clients;
    for (std::size_t p = 0; p < pairs; ++p) {
      clients.push_back(skyloft::spawn([&, p] {
        auto s = io::TcpStream::connect(io::SocketAddr::loopback(port));
        ASSERT_TRUE(s.ok());
        const int port_at_connect = local_port(s->fd());
        for (std::size_t r = 0; r < rounds; ++r) {
          std::uint64_t v = p * 1'000'000 + r, back = 0;
          ASSERT_TRUE(s->write_all(&v, sizeof v).ok());
          auto got = s->read_exact(&back, sizeof back, skyloft::deadline_after(slack() * 4));
          // The ports tell a reset of this connection from a descriptor closed under us and reused.
          ASSERT_TRUE(got.ok()) << "round " << r << ": " << got.error().message() << " (fd " << s->fd()
                                << ", local port " << port_at_connect << " at connect, " << local_port(s->fd())
                                << " now; negative: -errno)";
          ASSERT_EQ(back, v);
          done_rounds.fetch_add(1);
        }
      }));
    }
    for (auto& h : clients) h.join();
    stop_spinners = true;
    for (auto& h : hogs) h.join();
    acceptor.join();
  });
  EXPECT_EQ(done_rounds.load(), pairs * rounds);
  std::uint64_t preemptions = 0;
  for (const auto& s : rt.stats()) preemptions += s.preemptions;
  std::printf("preemptions %llu, steals %llu\n", static_cast<unsigned long long>(preemptions),
              static_cast<unsigned long long>(sum_of(rt.stats(), &skyloft::WorkerStats::steals)));
  EXPECT_TRUE(rt.shutdown().clean());
}

// A failed call's error is the caller's own. Without per-task TLS errno is the worker thread's: a task
// preempted between __errno_location() and the load, and resumed on another worker, would read that
// worker's errno (another task's). Callers read a stream with no socket (EBADF at once) while polluters,
// on the same two workers, keep errno at ENOENT; a 20 us quantum and work stealing move tasks around. The
// polluters also check that being preempted in their spin (switched out or not) leaves their errno alone.
TEST(IoErrors, AFailedCallReportsItsOwnErrorUnderPreemptionAndMigration) {
  Watchdog watchdog;
  Config c = io_config("auto");
  c.preempt = "timer";
  c.quantum_us = 20;
  Runtime rt(c);
  const std::size_t callers = 4, polluters = 4, calls = scaled(10000, 2000);
  std::atomic<std::size_t> wrong{0}, right{0}, polluter_wrong{0};
  std::atomic<int> last_wrong{0};
  std::atomic<bool> stop{false};
  rt.block_on([&] {
    std::vector<skyloft::JoinHandle> polluting, calling;
    for (std::size_t i = 0; i < polluters; ++i) {
      polluting.push_back(skyloft::spawn([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          set_errno<true>(ENOENT);
          for (int k = 0; k < 200; ++k) asm volatile("" ::: "memory");
          if (kTsan) skyloft::preempt_point();
          if (get_errno<true>() != ENOENT) polluter_wrong.fetch_add(1, std::memory_order_relaxed);
        }
      }));
    }
    for (std::size_t i = 0; i < callers; ++i) {
      calling.push_back(skyloft::spawn([&] {
        io::TcpStream none;  // no descriptor: recv(-1) fails with EBADF
        char byte;
        for (std::size_t k = 0; k < calls; ++k) {
          auto r = none.read(&byte, 1);
          if (!r && r.error() == std::errc::bad_file_descriptor) {
            right.fetch_add(1, std::memory_order_relaxed);
          } else {
            wrong.fetch_add(1, std::memory_order_relaxed);
            last_wrong.store(r ? -1 : r.error().value(), std::memory_order_relaxed);
          }
          if (kTsan) skyloft::preempt_point();
        }
      }));
    }
    for (auto& h : calling) h.join();
    stop = true;
    for (auto& h : polluting) h.join();
  });
  EXPECT_EQ(wrong.load(), 0u) << "a failed read reported errno " << last_wrong.load() << " (-1: it succeeded)";
  EXPECT_EQ(right.load(), callers * calls);
  EXPECT_EQ(polluter_wrong.load(), 0u) << "a preemption changed the interrupted task's errno";
  std::uint64_t preemptions = 0;
  for (const auto& s : rt.stats()) preemptions += s.preemptions;
  std::printf("preemptions %llu, wrong %zu\n", static_cast<unsigned long long>(preemptions), wrong.load());
  EXPECT_GT(preemptions, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, Io, ::testing::Values("uring", "epoll"),
                         [](const auto& info) { return std::string(info.param); });

// ---- outside the runtime / configuration ----

TEST(IoPlainThread, CallsBlockTheThread) {
  Watchdog watchdog;
  io::TcpListener l = listen_loopback();
  const auto port = port_of(l);
  std::thread server([&] {
    auto s = l.accept(skyloft::deadline_after(slack()));
    ASSERT_TRUE(s.ok()) << s.error().message();
    echo_until_eof(std::move(s.value()));
  });
  auto c = io::TcpStream::connect(io::SocketAddr::loopback(port));
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(c->write_all("ping", 4).ok());
  char buf[4];
  ASSERT_TRUE(c->read_exact(buf, 4).ok());
  EXPECT_EQ(std::string(buf, 4), "ping");
  EXPECT_EQ(c->read(buf, 4, skyloft::deadline_after(10ms)).error(), std::errc::timed_out);
  c->close();
  server.join();
  l.close();
  EXPECT_EQ(io::TcpStream::connect(io::SocketAddr::loopback(port)).error(), std::errc::connection_refused);
}

// What Docker's default seccomp profile does: io_uring_setup fails with EPERM.
void forbid_io_uring_setup() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    std::perror("seccomp");
    std::exit(2);
  }
}

// In a child process: io_uring forbidden, "auto" falls back to epoll with one line, and I/O works.
void fallback_child() {
  forbid_io_uring_setup();
  if (io::uring_available()) std::exit(3);
  bool ok = false;
  {
    Runtime rt(io_config("auto"));
    rt.block_on([&] {
      io::TcpListener l = listen_loopback();
      auto server = skyloft::spawn([&] {
        auto s = l.accept();
        if (s) echo_until_eof(std::move(s.value()));
      });
      auto c = io::TcpStream::connect(io::SocketAddr::loopback(port_of(l)));
      char buf[4];
      ok = std::string(io::backend_name()) == "epoll" && c && c->write_all("ping", 4) && c->read_exact(buf, 4);
      c->close();
      server.join();
    });
  }
  { Runtime again(io_config("auto")); }  // no second line
  std::fprintf(stderr, "child done\n");
  std::exit(ok ? 0 : 4);
}

TEST(IoFallback, AutoFallsBackToEpollWithOneLineWhenIoUringIsForbidden) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(fallback_child(), ::testing::ExitedWithCode(0),
              "^skyloft: io_uring_setup is not permitted [^\n]*; I/O uses the epoll readiness backend\nchild done\n$");
}

TEST(IoFallback, ExplicitUringWhereForbiddenFailsCallsWithEnosys) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        forbid_io_uring_setup();
        Runtime rt(io_config("uring"));
        std::error_code e;
        rt.block_on([&] { e = io::TcpStream::connect(io::SocketAddr::loopback(1)).error(); });
        std::exit(e == std::errc::function_not_supported ? 0 : 5);
      },
      ::testing::ExitedWithCode(0), "io_backend=uring but io_uring_setup is not permitted");
}

TEST(IoConfig, UnknownBackendIsAConfigError) {
  Config c = io_config("bogus");
  EXPECT_CONFIG_ERROR(Runtime rt(c), "io_backend 'bogus' is unknown: use auto, uring or epoll");
  ScopedEnv env("SKYLOFT_IO_BACKEND", std::string("sometimes"));
  EXPECT_CONFIG_ERROR(Runtime rt(Config::from_env()), "io_backend 'sometimes'");
}

TEST(IoAddr, ParsesAndRejects) {
  auto a = io::SocketAddr::parse("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port(), 8080);
  EXPECT_EQ(a->to_string(), "127.0.0.1:8080");
  auto b = io::SocketAddr::parse("[::1]:9");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->family(), AF_INET6);
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:70000", "host:80", "[::1]9", "1.2.3.4:8x"}) {
    EXPECT_EQ(io::SocketAddr::parse(bad).error(), std::errc::invalid_argument) << bad;
  }
}
