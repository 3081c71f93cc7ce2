// uring_poller.cpp - the io_uring backend: one ring per processor.
//
// Protocol (U1-U5); submission is the driving thread's, the CQ is shared as poller.hpp R1-R3 say:
//   U1. A task prepares its SQE (and, with a deadline, a linked IORING_OP_LINK_TIMEOUT) tagged with the
//       address of its Completion, counts it in ops_ (kPollIo, R1) and parks. Nothing is submitted yet.
//   U2. The poll point submits everything prepared since the last round (one io_uring_enter per round);
//       reaping (this processor's poll point, or another's, R2) looks at the CQ tail (no system call) and
//       completes each record: res, then done, then wake_address(&done). The task wakes through the
//       normal wake path, on any processor.
//   U3. kPollIo is cleared by each processor's poll point once no poller has operations in flight.
//   U4. Parking (ParkBackend::wait) with operations in flight: under the cq lock, reap; arm an
//       IORING_OP_FUTEX_WAIT on the park word (once; it stays armed across parks until it completes);
//       submit and wait for one CQE. So a completion and ParkWord::unpark() (a FUTEX_WAKE of all waiters
//       on the word, wake()) both end the sleep. If the word already changed, the futex wait completes at
//       once with -EAGAIN (the check is the kernel's, atomic). With nothing in flight: the plain futex.
//   U5. Shutdown (cancel_all, after the threads stopped): IORING_ASYNC_CANCEL_ANY, then reap until nothing
//       is pending. Records are not completed (their tasks are reported as blocked and never run again).
//
//   U6. Completions are not pushed into a running thread (IORING_SETUP_COOP_TASKRUN): by default the kernel
//       interrupts the submitting thread for each one (an IPI and a signal-path kernel entry, several
//       microseconds on a VM, and contention on the socket lock the interrupted thread then takes at once);
//       measured on a 2-core VM, memcaslap against skyloft-memcached went from 50k to 80k requests/s with
//       it. The kernel instead flags the ring (IORING_SQ_TASKRUN); the owner's poll point sees the flag (a
//       load) and enters the kernel, which runs the deferred work and posts the CQEs; a sleeping owner is
//       still woken (its ring wait, U4). A thread that runs one task for long makes no poll point: another
//       processor's poll point (R2) that sees the flag still set kStalledAfterNs into that task's run
//       nudges the thread (nudge_thread: one signal that preempts nothing), at most once per interval.
//       Kernels before 5.19 lack the flag; the ring is then set up without it and works as before.
// Why a futex wait SQE rather than an eventfd: the park word already is a futex, so unpark() keeps its
// one FUTEX_WAKE and needs no extra descriptor or read to rearm; the ring wait covers both sources in one
// io_uring_enter. No IORING_SETUP_SINGLE_ISSUER / DEFER_TASKRUN: the processor may move to another kernel
// thread (handoff.cpp), and the ring is then driven from that thread.
#include <errno.h>
#include <liburing.h>
#include <linux/futex.h>
#include <poll.h>

#include <climits>

#include "arch/context.hpp"
#include "core/processor.hpp"
#include "core/spinlock.hpp"
#include "core/scheduler.hpp"
#include "io/poller.hpp"
#include "preempt/mechanism.hpp"

namespace skyloft::io_detail {
namespace {

// Not in Debian 12's kernel headers / liburing 2.3 (kernel 6.7 ABI).
constexpr std::uint8_t kOpFutexWait = 51;
constexpr std::uint32_t kFutex2SizeU32 = 0x02;
constexpr std::uint32_t kFutex2Private = 128;
constexpr std::uint64_t kFutexBitsetAny = 0xffffffffu;

// user_data: a Completion's address, | kTagTimed when it has a deadline (so a reaper on another processor
// reads nothing of the record before completing it), or one of these tags.
constexpr std::uint64_t kTagIgnore = 0;   // linked timeouts, cancel requests
constexpr std::uint64_t kTagPark = 2;     // the park futex wait
constexpr std::uint64_t kTagTimed = 1;
constexpr unsigned kRingEntries = 256;
constexpr unsigned kCqEntries = 4096;
// U6: a task that has run this long on a processor whose ring holds deferred completions gets its thread
// nudged (a few microseconds of the core each time, so not sooner, and not more often).
constexpr std::uint64_t kStalledAfterNs = 50'000;

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
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;  // U6
    params.cq_entries = kCqEntries;
    int r = io_uring_queue_init_params(kRingEntries, &ring_, &params);
    if (r == -EINVAL) {  // a kernel before 5.19: it interrupts the thread for every completion instead
      params = io_uring_params{};
      params.flags = IORING_SETUP_CQSIZE;
      params.cq_entries = kCqEntries;
      r = io_uring_queue_init_params(kRingEntries, &ring_, &params);
    }
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
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(&c) | (c.timed ? kTagTimed : 0));
    pending_.fetch_add(1, std::memory_order_relaxed);
    if (c.timed) {
      sqe->flags |= IOSQE_IO_LINK;
      io_uring_sqe* t = io_uring_get_sqe(&ring_);
      io_uring_prep_link_timeout(t, &ts, IORING_TIMEOUT_ABS);
      io_uring_sqe_set_data64(t, kTagIgnore);
      pending_.fetch_add(1, std::memory_order_relaxed);
      timed_.fetch_add(1, std::memory_order_relaxed);
    }
    unsubmitted_ = true;
#if SKY_TSAN
    __tsan_release(&c);  // the kernel orders submission before completion; ThreadSanitizer cannot see it
#endif
    ops_added();  // U1
    await(c);     // `this` belongs to the processor we leave: not touched below
    if (c.res == -ECANCELED && c.timed && now_ns() >= deadline_ns) return -ETIMEDOUT;
    return c.res;
  }

  // U4
  void wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t deadline_ns) noexcept override {
    if (ops_in_flight() == 0) {
      futex_wait_word(word, expected, deadline_ns);
      return;
    }
    std::lock_guard<SpinLock> g(cq_lock_);  // other processors skip this ring while we sleep in it (R3)
    if (unsubmitted_) flush();
    if (reap_locked() != 0) return;  // a task became runnable: look for work first
    if (!futex_armed_) {
      if (io_uring_sq_space_left(&ring_) < 1) flush();
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_rw(kOpFutexWait, sqe, static_cast<int>(kFutex2SizeU32 | kFutex2Private),
                       const_cast<std::atomic<std::uint32_t>*>(&word), 0, 0);
      sqe->addr2 = expected;
      sqe->addr3 = kFutexBitsetAny;
      io_uring_sqe_set_data64(sqe, kTagPark);
      futex_armed_ = true;
      pending_.fetch_add(1, std::memory_order_relaxed);
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
    reap_locked();
  }

  void wake(const std::atomic<std::uint32_t>& word) noexcept override { futex_wake_word(word, INT_MAX); }

  // U5
  std::size_t cancel_all() noexcept override {
    const std::size_t ops = ops_in_flight();
    if (pending_.load(std::memory_order_relaxed) == 0) return 0;
    if (io_uring_sq_space_left(&ring_) < 1) io_uring_submit(&ring_);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, kTagIgnore);
    std::size_t pending = pending_.load(std::memory_order_relaxed) + 1;
    const std::uint64_t give_up = now_ns() + 2'000'000'000ull;
    while (pending != 0 && now_ns() < give_up) {
      __kernel_timespec ts = to_kts(50'000'000);
      io_uring_cqe* cqe = nullptr;
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      unsigned head, n = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) { ++n; }
      io_uring_cq_advance(&ring_, n);
      pending -= std::min<std::size_t>(pending, n);
    }
    pending_.store(0, std::memory_order_relaxed);
    ops_removed(static_cast<unsigned>(ops));
    timed_.store(0, std::memory_order_release);
    return ops;
  }

 protected:
  // U2, U6: the enter that submits also runs the kernel's deferred completions on its way out.
  void submit_pending() noexcept override {
    if (unsubmitted_) {
      flush();
    } else if (taskrun_pending()) {
      io_uring_enter(ring_.ring_fd, 0, 0, IORING_ENTER_GETEVENTS, nullptr);
    }
  }
  // U6: another processor's poll point; this one has not passed its own for a while (one task runs) and
  // the kernel holds completions for its thread.
  void nudge_if_stalled(std::uint64_t now) noexcept override {
    if (!taskrun_pending() || proc_.park.parked()) return;  // a parked owner is woken by the kernel itself
    if (now < last_poll_ns() + kStalledAfterNs) return;
    std::uint64_t next = next_nudge_.load(std::memory_order_relaxed);
    if (now < next || !next_nudge_.compare_exchange_strong(next, now + kStalledAfterNs, std::memory_order_relaxed)) return;
    proc_.io_nudges.fetch_add(1, std::memory_order_relaxed);
    nudge_thread(proc_);
  }
  unsigned reap() noexcept override {
    if (!cq_lock_.try_lock()) return 0;
    const unsigned n = reap_locked();
    cq_lock_.unlock();
    return n;
  }
  // liburing 2.3's io_uring_cq_ready reads the head plainly; the head moves under other processors' reaps.
  bool maybe_ready() const noexcept override {
    return __atomic_load_n(ring_.cq.ktail, __ATOMIC_ACQUIRE) != __atomic_load_n(ring_.cq.khead, __ATOMIC_RELAXED);
  }
  std::uint64_t help_interval_ns() const noexcept override { return 0; }
  bool deliverable() const noexcept override { return maybe_ready() || taskrun_pending(); }  // R4, U6

 private:
  bool taskrun_pending() const noexcept {
    return (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) != 0;
  }
  void flush() noexcept {
    io_uring_submit(&ring_);
    unsubmitted_ = false;
  }

  // Completes every CQE present; returns how many operations (not timeouts or park waits) completed.
  // cq_lock_ held.
  unsigned reap_locked() noexcept {
    // More completions than the CQ holds wait in the kernel (IORING_FEAT_NODROP) until a GETEVENTS enter.
    if ((IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW) != 0) {
      io_uring_enter(ring_.ring_fd, 0, 0, IORING_ENTER_GETEVENTS, nullptr);
    }
    unsigned head, n = 0, ops = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++n;
      const std::uint64_t tag = cqe->user_data;
      if (tag == kTagPark) {
        futex_armed_ = false;
      } else if (tag != kTagIgnore && tag != LIBURING_UDATA_TIMEOUT) {
        auto* c = reinterpret_cast<Completion*>(tag & ~kTagTimed);
        if ((tag & kTagTimed) != 0) timed_.fetch_sub(1, std::memory_order_release);
        ++ops;
#if SKY_TSAN
        __tsan_acquire(c);  // pairs with the submitter's release (U1)
#endif
        complete(c, cqe->res);
      }
    }
    if (n != 0) {
      io_uring_cq_advance(&ring_, n);
      pending_.fetch_sub(n, std::memory_order_relaxed);
      ops_removed(ops);
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
  bool unsubmitted_ = false;   // SQEs prepared since the last io_uring_enter (driving thread)
  SpinLock cq_lock_;           // the CQ's one consumer at a time (R3)
  bool futex_armed_ = false;   // the park futex wait is in the ring (cq_lock_)
  std::atomic<std::size_t> pending_{0};  // CQEs still to come (ops, linked timeouts, the park wait)
  std::atomic<std::uint32_t> timed_{0};  // operations with a deadline in flight; shutdown reads
  std::atomic<std::uint64_t> next_nudge_{0};  // U6: no nudge before this now_ns(); claimed by CAS (helpers)
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
