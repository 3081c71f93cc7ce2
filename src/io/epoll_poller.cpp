// epoll_poller.cpp - the readiness backend (where io_uring is unavailable): one epoll set per processor.
//
// The public layer tries each call non-blocking and, on EAGAIN, parks in wait_ready() until the fd is
// ready. Protocol:
//   E1. wait_ready links a Waiter (on the task's stack) into the fd's list under `lock_` and (re)arms the
//       fd with EPOLLONESHOT for the union of its waiters' events; it counts in ops_ (kPollIo, poller.hpp
//       R1); the task parks in the wait table on Waiter::c.done, with the deadline as a wait-table timer
//       (so shutdown sees it).
//   E2. Reaping (this processor's poll point, or another's at most every 20 us, R2) calls
//       epoll_wait with a zero timeout; for each ready fd it unlinks the waiters whose events fired
//       (hang-up and errors wake everyone), re-arms the fd for those left, and completes the records (the
//       wake itself happens after the lock is released). Concurrent reapers split the events.
//   E3. A waiter whose deadline passed unlinks itself under `lock_`, from whichever processor it runs on
//       (that is why the list has a lock); if E2 already completed it, it reports readiness instead.
//   E4. Parking with waiters linked: ppoll on the epoll fd and an eventfd, else the plain futex; wake()
//       does both a FUTEX_WAKE and an eventfd write (the parker may be in either). The eventfd is drained
//       after each sleep; a stale count only makes the next sleep return at once.
// Closing an fd removes it from the epoll set (the kernel does that); stale list entries cannot exist,
// because every waiter unlinks before it returns (E2 or E3).
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <climits>

#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/spinlock.hpp"
#include "io/poller.hpp"
#include "skyloft/wait.hpp"

namespace skyloft::io_detail {
namespace {

struct Waiter {
  Completion c;
  std::uint32_t events = 0;
  Waiter* next = nullptr;
};

constexpr std::uint32_t kAlways = EPOLLERR | EPOLLHUP;

class EpollPoller final : public IoPoller {
 public:
  explicit EpollPoller(Processor& p) : IoPoller(p) {}
  ~EpollPoller() override {
    if (epfd_ >= 0) ::close(epfd_);
    if (evfd_ >= 0) ::close(evfd_);
  }
  bool init() noexcept {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    evfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return epfd_ >= 0 && evfd_ >= 0;
  }

  BackendKind kind() const noexcept override { return BackendKind::epoll; }
  std::uint32_t timed_in_flight() const noexcept override { return 0; }  // deadlines are wait-table timers

  // E1, E3
  std::int32_t wait_ready(int fd, std::uint32_t events, std::uint64_t deadline_ns) noexcept override {
    Waiter w;
    w.events = events;
    {
      std::lock_guard<SpinLock> g(lock_);
      Waiter*& head = waiters_[fd];
      w.next = head;
      head = &w;
      if (!arm(fd, head)) {  // not pollable (a regular file): always ready
        head = w.next;
        if (head == nullptr) waiters_.erase(fd);
        return static_cast<std::int32_t>(events);
      }
      ops_added();
    }
    // `this` may belong to another processor's thread from here on; only lock_ and the list are used.
    const Deadline d = deadline_ns == UINT64_MAX
                           ? kNoDeadline
                           : Deadline(std::chrono::duration_cast<Deadline::duration>(std::chrono::nanoseconds(deadline_ns)));
    while (w.c.done.load(std::memory_order_acquire) == 0) {
      if (wait_address(w.c.done, 0, d, WaitReason::io) == WaitResult::timed_out) {
        std::lock_guard<SpinLock> g(lock_);
        if (w.c.done.load(std::memory_order_acquire) != 0) break;  // E2 won the race
        auto it = waiters_.find(fd);
        for (Waiter** pp = &it->second; *pp != nullptr; pp = &(*pp)->next) {
          if (*pp == &w) {
            *pp = w.next;
            break;
          }
        }
        if (it->second == nullptr) waiters_.erase(it);
        ops_removed(1);
        return -ETIMEDOUT;
      }
    }
    return w.c.res;
  }

  // E4
  void wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t deadline_ns) noexcept override {
    if (ops_in_flight() == 0) {
      futex_wait_word(word, expected, deadline_ns);
      return;
    }
    if (word.load(std::memory_order_acquire) == expected) {
      pollfd fds[2] = {{epfd_, POLLIN, 0}, {evfd_, POLLIN, 0}};
      timespec ts;
      timespec* timeout = nullptr;
      if (deadline_ns != UINT64_MAX) {
        const std::uint64_t now = now_ns();
        const std::uint64_t rel = deadline_ns > now ? deadline_ns - now : 0;
        ts.tv_sec = static_cast<time_t>(rel / 1'000'000'000ull);
        ts.tv_nsec = static_cast<long>(rel % 1'000'000'000ull);
        timeout = &ts;
      }
      ppoll(fds, 2, timeout, nullptr);
    }
    std::uint64_t count;
    while (read(evfd_, &count, sizeof count) > 0) {
    }
  }

  void wake(const std::atomic<std::uint32_t>& word) noexcept override {
    futex_wake_word(word, INT_MAX);
    const std::uint64_t one = 1;
    while (write(evfd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

  std::size_t cancel_all() noexcept override {
    std::lock_guard<SpinLock> g(lock_);
    const std::uint32_t n = ops_in_flight();
    waiters_.clear();  // the tasks stay in the wait table and are reported there
    ops_removed(n);
    return n;
  }

 protected:
  void submit_pending() noexcept override {}
  // E2
  unsigned reap() noexcept override {
    epoll_event evs[64];
    const int n = epoll_wait(epfd_, evs, 64, 0);
    if (n <= 0) return 0;
    std::vector<Waiter*> ready;
    {
      std::lock_guard<SpinLock> g(lock_);
      for (int i = 0; i < n; ++i) {
        const int fd = evs[i].data.fd;
        const std::uint32_t got = evs[i].events;
        auto it = waiters_.find(fd);
        if (it == waiters_.end()) continue;
        Waiter** pp = &it->second;
        while (*pp != nullptr) {
          Waiter* w = *pp;
          if ((got & (w->events | kAlways)) != 0) {
            *pp = w->next;
            w->c.res = static_cast<std::int32_t>(got);
            ready.push_back(w);
          } else {
            pp = &w->next;
          }
        }
        if (it->second == nullptr) {
          waiters_.erase(it);
        } else if (!arm(fd, it->second)) {
          for (Waiter* w = it->second; w != nullptr; w = w->next) ready.push_back(w);  // gone: wake them
          waiters_.erase(it);
        }
      }
      ops_removed(static_cast<unsigned>(ready.size()));
      // Completed under the lock so E3 sees `done` once it gets the lock; the wake needs no lock.
      for (Waiter* w : ready) w->c.done.store(1, std::memory_order_seq_cst);
    }
    for (Waiter* w : ready) wake_address(w->c.done);  // the address is only a key (the waiter may be gone)
    return static_cast<unsigned>(ready.size());
  }
  bool maybe_ready() const noexcept override { return true; }
  std::uint64_t help_interval_ns() const noexcept override { return 20'000; }
  bool deliverable() const noexcept override {  // R4: an epoll set polls readable while it has events
    pollfd pfd{epfd_, POLLIN, 0};
    return ::poll(&pfd, 1, 0) > 0;
  }

 private:
  // (Re)arms `fd` for the union of its waiters' events. False if the fd cannot be polled. lock_ held.
  bool arm(int fd, const Waiter* head) noexcept {
    epoll_event ev{};
    for (const Waiter* w = head; w != nullptr; w = w->next) ev.events |= w->events;
    ev.events |= EPOLLONESHOT;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) return true;
    if (errno == ENOENT && epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0) return true;
    return false;
  }

  int epfd_ = -1;
  int evfd_ = -1;
  SpinLock lock_;
  std::unordered_map<int, Waiter*> waiters_;   // fd -> its waiters (lock_); ops_ counts them
};

}  // namespace

IoPoller* make_epoll_poller(Processor& p) noexcept {
  auto* e = new (std::nothrow) EpollPoller(p);
  if (e != nullptr && !e->init()) {
    delete e;
    return nullptr;
  }
  return e;
}

}  // namespace skyloft::io_detail
