// uring_poller.cpp - the io_uring backend: one ring per processor.
//
// Protocol (U1-U5), all on the thread driving the processor:
//   U1. A task prepares its SQE (and, with a deadline, a linked IORING_OP_LINK_TIMEOUT) tagged with the
//       address of its Completion, sets kPollIo and parks. Nothing is submitted yet.
//   U2. The poll point submits everything prepared since the last round (one io_uring_enter per round),
//       then reaps the CQ (a look at the tail, no system call) and completes each record: res, then done,
//       then wake_address(&done). The task wakes through the normal wake path, on any processor.
//   U3. kPollIo stays set while operations are in flight and is cleared by the poller when none is.
//   U4. Parking (ParkBackend::wait): reap; arm an IORING_OP_FUTEX_WAIT on the park word (once; it stays
//       armed across parks until it completes); submit and wait for one CQE. So a completion and
//       ParkWord::unpark() (a FUTEX_WAKE on the word, wake()) both end the sleep. If the word already
//       changed, the futex wait completes at once with -EAGAIN (the check is the kernel's, atomic).
//   U5. Shutdown (cancel_all, after the threads stopped): IORING_ASYNC_CANCEL_ANY, then reap until nothing
//       is pending. Records are not completed (their tasks are reported as blocked and never run again).
//
// Why a futex wait SQE rather than an eventfd: the park word already is a futex, so unpark() keeps its
// one FUTEX_WAKE and needs no extra descriptor or read to rearm; the ring wait covers both sources in one
// io_uring_enter. No IORING_SETUP_SINGLE_ISSUER / DEFER_TASKRUN: the processor may move to another kernel
// thread (handoff.cpp), and the ring is then driven from that thread.
#include <errno.h>
#include <liburing.h>
#include <linux/futex.h>
#include <poll.h>

#include <climits>

#include "core/processor.hpp"
#include "core/scheduler.hpp"
#include "io/poller.hpp"

namespace skyloft::io_detail {
namespace {

// Not in Debian 12's kernel headers / liburing 2.3 (kernel 6.7 ABI).
constexpr std::uint8_t kOpFutexWait = 51;
constexpr std::uint32_t kFutex2SizeU32 = 0x02;
constexpr std::uint32_t kFutex2Private = 128;
constexpr std::uint64_t kFutexBitsetAny = 0xffffffffu;

constexpr std::uint64_t kTagIgnore = 0;   // linked timeouts, cancel requests
constexpr std::uint64_t kTagPark = 1;     // the park futex wait
constexpr unsigned kRingEntries = 256;
constexpr unsigned kCqEntries = 4096;

__kernel_timespec to_kts(std::uint64_t ns) noexcept {
  __kernel_timespec ts;
  ts.tv_sec = static_cast<long long>(ns / 1'000'000'000ull);
  ts.tv_nsec = static_cast<long long>(ns % 1'000'000'000ull);
  return ts;
}

class UringPoller final : public IoPoller {
 public:
  explicit UringPoller(Processor& p) : IoPoller(p) {}
  ~UringPoller() override {
    if (ready_) io_uring_queue_exit(&ring_);
  }

  int init() noexcept {
    io_uring_params params{};
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = kCqEntries;
    int r = io_uring_queue_init_params(kRingEntries, &ring_, &params);
    if (r < 0) return r;
    ready_ = true;
    return 0;
  }

  BackendKind kind() const noexcept override { return BackendKind::uring; }
  std::uint32_t timed_in_flight() const noexcept override { return timed_.load(std::memory_order_acquire); }

  std::int32_t submit_and_await(const OpSpec& op, std::uint64_t deadline_ns) noexcept override {
    Completion c;
    c.timed = deadline_ns != UINT64_MAX;
    __kernel_timespec ts = to_kts(c.timed ? deadline_ns : 0);  // read by the kernel at submission (U2)
    if (io_uring_sq_space_left(&ring_) < 2) flush();           // the op and its timeout in one submission
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    prep(sqe, op);
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(&c));
    ++pending_;
    if (c.timed) {
      sqe->flags |= IOSQE_IO_LINK;
      io_uring_sqe* t = io_uring_get_sqe(&ring_);
      io_uring_prep_link_timeout(t, &ts, IORING_TIMEOUT_ABS);
      io_uring_sqe_set_data64(t, kTagIgnore);
      ++pending_;
      timed_.fetch_add(1, std::memory_order_relaxed);
    }
    ++ops_;
    unsubmitted_ = true;
    want_poll();  // U1
    await(c);     // `this` belongs to the processor we leave: not touched below
    if (c.res == -ECANCELED && c.timed && now_ns() >= deadline_ns) return -ETIMEDOUT;
    return c.res;
  }

  // U2, U3
  void poll(Processor&, std::uint64_t) noexcept override {
    if (unsubmitted_) flush();
    reap();
    if (ops_ == 0) done_polling();
  }

  // U4
  void wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t deadline_ns) noexcept override {
    if (unsubmitted_) flush();
    if (reap() != 0) return;  // a task became runnable: look for work first
    if (!futex_armed_) {
      if (io_uring_sq_space_left(&ring_) < 1) flush();
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_rw(kOpFutexWait, sqe, static_cast<int>(kFutex2SizeU32 | kFutex2Private),
                       const_cast<std::atomic<std::uint32_t>*>(&word), 0, 0);
      sqe->addr2 = expected;
      sqe->addr3 = kFutexBitsetAny;
      io_uring_sqe_set_data64(sqe, kTagPark);
      futex_armed_ = true;
      ++pending_;
    }
    io_uring_cqe* cqe = nullptr;
    if (deadline_ns == UINT64_MAX) {
      io_uring_submit_and_wait(&ring_, 1);
    } else {
      const std::uint64_t now = now_ns();
      if (deadline_ns > now) {
        __kernel_timespec ts = to_kts(deadline_ns - now);
        io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      } else {
        io_uring_submit(&ring_);
      }
    }
    unsubmitted_ = false;
    reap();
  }

  void wake(const std::atomic<std::uint32_t>& word) noexcept override { futex_wake_word(word, INT_MAX); }

  // U5
  std::size_t cancel_all() noexcept override {
    const std::size_t ops = ops_;
    if (pending_ == 0) return 0;
    if (io_uring_sq_space_left(&ring_) < 1) io_uring_submit(&ring_);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, kTagIgnore);
    ++pending_;
    const std::uint64_t give_up = now_ns() + 2'000'000'000ull;
    while (pending_ != 0 && now_ns() < give_up) {
      __kernel_timespec ts = to_kts(50'000'000);
      io_uring_cqe* cqe = nullptr;
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      unsigned head, n = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) { ++n; }
      io_uring_cq_advance(&ring_, n);
      pending_ -= std::min<std::size_t>(pending_, n);
    }
    ops_ = 0;
    timed_.store(0, std::memory_order_release);
    return ops;
  }

 private:
  void flush() noexcept {
    io_uring_submit(&ring_);
    unsubmitted_ = false;
  }

  // Completes every CQE present; returns how many operations (not timeouts or park waits) completed.
  unsigned reap() noexcept {
    unsigned head, n = 0, ops = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++n;
      const std::uint64_t tag = cqe->user_data;
      if (tag == kTagPark) {
        futex_armed_ = false;
      } else if (tag != kTagIgnore && tag != LIBURING_UDATA_TIMEOUT) {
        auto* c = reinterpret_cast<Completion*>(tag);
        if (c->timed) timed_.fetch_sub(1, std::memory_order_release);
        ++ops;
        complete(c, cqe->res);
      }
    }
    if (n != 0) {
      io_uring_cq_advance(&ring_, n);
      pending_ -= std::min<std::size_t>(pending_, n);
      ops_ -= ops;
    }
    return ops;
  }

  static void prep(io_uring_sqe* sqe, const OpSpec& op) noexcept {
    const unsigned len = static_cast<unsigned>(std::min<std::size_t>(op.len, 0x7ffff000u));
    switch (op.op) {
      case Op::accept: io_uring_prep_accept(sqe, op.fd, op.out_addr, op.out_len, op.flags); break;
      case Op::connect: io_uring_prep_connect(sqe, op.fd, op.addr, op.addrlen); break;
      case Op::recv: io_uring_prep_recv(sqe, op.fd, op.buf, len, op.flags); break;
      case Op::send: io_uring_prep_send(sqe, op.fd, op.buf, len, op.flags); break;
      case Op::recvmsg: io_uring_prep_recvmsg(sqe, op.fd, op.msg, static_cast<unsigned>(op.flags)); break;
      case Op::sendmsg: io_uring_prep_sendmsg(sqe, op.fd, op.msg, static_cast<unsigned>(op.flags)); break;
      case Op::read: io_uring_prep_read(sqe, op.fd, op.buf, len, op.offset); break;
      case Op::write: io_uring_prep_write(sqe, op.fd, op.buf, len, op.offset); break;
      case Op::fsync: io_uring_prep_fsync(sqe, op.fd, 0); break;
      case Op::poll: io_uring_prep_poll_add(sqe, op.fd, op.poll_mask); break;
    }
  }

  io_uring ring_{};
  bool ready_ = false;
  bool unsubmitted_ = false;   // SQEs prepared since the last io_uring_enter
  bool futex_armed_ = false;   // the park futex wait is in the ring
  std::size_t pending_ = 0;    // CQEs still to come (operations, linked timeouts, the park wait)
  std::size_t ops_ = 0;        // operations in flight (kPollIo while non-zero)
  std::atomic<std::uint32_t> timed_{0};  // operations with a deadline in flight; driver writes, shutdown reads
};

}  // namespace

IoPoller* make_uring_poller(Processor& p) noexcept {
  auto* u = new (std::nothrow) UringPoller(p);
  if (u == nullptr) return nullptr;
  if (u->init() < 0) {
    delete u;
    return nullptr;
  }
  return u;
}

bool probe_uring(const char** why) noexcept {
  io_uring ring;
  const int r = io_uring_queue_init(4, &ring, 0);
  if (r < 0) {
    *why = r == -EPERM    ? "io_uring_setup is not permitted (kernel.io_uring_disabled or a seccomp profile)"
           : r == -ENOSYS ? "io_uring_setup is not implemented by this kernel"
                          : "io_uring_setup failed";
    return false;
  }
  bool ok = false;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring)) {
    ok = io_uring_opcode_supported(probe, kOpFutexWait) && io_uring_opcode_supported(probe, IORING_OP_LINK_TIMEOUT) &&
         io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL) && io_uring_opcode_supported(probe, IORING_OP_SEND);
    io_uring_free_probe(probe);
  }
  io_uring_queue_exit(&ring);
  if (!ok) *why = "the kernel's io_uring lacks IORING_OP_FUTEX_WAIT (kernel < 6.7) or another needed operation";
  return ok;
}

}  // namespace skyloft::io_detail
