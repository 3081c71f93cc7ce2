// workload.hpp - what skyloft_micro runs in each row, generic over the system (skyloft task, std::thread,
// Boost fiber): the two-party start barrier, the yield and condvar ping-pong bodies, the spawners, the
// spawn+join / yield / lock+unlock / condvar loops, and the skyloft condvar rows with placement tracking.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

#include <boost/fiber/all.hpp>

#include "skyloft/skyloft.hpp"

#include "bench_common.hpp"
#include "runner.hpp"

namespace skyloft::bench::micro {

// ---------------------------------------------------------------------------------------------------------
// Two parties

// Start barrier and timestamps shared by the two parties of a ping-pong.
struct TwoParty {
  std::atomic<int> ready{0};  // written by both parties: each adds 1 on arrival
  std::uint64_t start[2] = {0, 0};
  std::uint64_t end[2] = {0, 0};

  template <class Yield>
  void arrive(int id, Yield&& yield) {
    ready.fetch_add(1, std::memory_order_acq_rel);
    while (ready.load(std::memory_order_acquire) < 2) yield();
    start[id] = now_ns();
  }
  void finish(int id) { end[id] = now_ns(); }
  std::uint64_t elapsed() const {
    return std::max(end[0], end[1]) - std::min(start[0], start[1]);
  }
};

// Yield ping-pong body: n yields after the barrier.
template <class Yield>
void yield_party(TwoParty& tp, int id, std::uint64_t n, Yield&& yield) {
  tp.arrive(id, yield);
  for (std::uint64_t i = 0; i < n; ++i) yield();
  tp.finish(id);
}

// Condvar ping-pong state: party `id` waits for turn == id, hands the turn over and wakes the other.
template <class M, class CV>
struct PingPong {
  M m;
  CV cv[2];
  int turn = 0;
  // Placement tracking (skyloft cross-core row only), protected by m: the worker of the party that handed
  // over the turn last, and how many hand-overs found the receiver on the same / another worker.
  int last_worker = -1;
  std::uint64_t same_worker = 0, other_worker = 0, migrations[2] = {0, 0};
};

struct NoTrack {
  int operator()() const { return -1; }
};

// `where` returns the caller's worker for placement tracking (NoTrack: none).
template <class M, class CV, class Yield, class Where = NoTrack>
void pingpong_party(PingPong<M, CV>& pp, TwoParty& tp, int id, std::uint64_t n, Yield&& yield,
                    Where where = {}) {
  tp.arrive(id, yield);
  int mine = where();
  for (std::uint64_t i = 0; i < n; ++i) {
    std::unique_lock<M> lk(pp.m);
    pp.cv[id].wait(lk, [&] { return pp.turn == id; });
    if constexpr (!std::is_same_v<Where, NoTrack>) {
      int w = where();
      if (w != mine) ++pp.migrations[id];
      mine = w;
      if (pp.last_worker >= 0) ++(w == pp.last_worker ? pp.same_worker : pp.other_worker);
      pp.last_worker = w;
    }
    pp.turn = 1 - id;
    pp.cv[1 - id].notify_one();
  }
  tp.finish(id);
}

// ---------------------------------------------------------------------------------------------------------
// The rows' bodies, generic over the system. A spawner `spawn(id, f)` starts f as party `id`'s task, thread
// or fiber and returns a handle with join().

void sky_yield();
void std_yield();
void boost_yield();

struct SkySpawn {  // a skyloft task, unpinned
  template <class F>
  skyloft::JoinHandle operator()(int, F f) const { return skyloft::spawn(std::move(f)); }
};
struct ThreadSpawn {  // a std::thread (inheriting the caller's affinity)
  template <class F>
  std::thread operator()(int, F f) const { return std::thread(std::move(f)); }
};
struct PinnedThreadSpawn {  // a std::thread pinned to core0 (party 0) or core1 (party 1)
  int core0, core1;
  template <class F>
  std::thread operator()(int id, F f) const {
    return std::thread([core = id == 0 ? core0 : core1, f] {
      pin_self(core);
      f();
    });
  }
};
struct FiberSpawn {  // a Boost fiber (default round_robin scheduler, default fixedsize_stack allocator)
  template <class F>
  boost::fibers::fiber operator()(int, F f) const { return boost::fibers::fiber(std::move(f)); }
};

// spawn+join of an empty task / thread / fiber, n times.
template <class Spawn>
RunResult spawn_join(std::uint64_t n, Spawn spawn) {
  std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) spawn(0, [] {}).join();
  return {now_ns() - t0, n};
}

// Two parties yielding n times each; ops = 2n yields.
template <class Spawn, class Yield>
RunResult yield_pingpong(std::uint64_t n, Spawn spawn, Yield yield) {
  TwoParty tp;
  auto a = spawn(0, [&] { yield_party(tp, 0, n, yield); });
  auto b = spawn(1, [&] { yield_party(tp, 1, n, yield); });
  a.join();
  b.join();
  return {tp.elapsed(), 2 * n};
}

// Uncontended lock+unlock of a mutex of type M, n times.
template <class M>
RunResult lock_unlock(std::uint64_t n) {
  M m;
  std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    m.lock();
    do_not_optimize(&m);
    m.unlock();
  }
  return {now_ns() - t0, n};
}

// Condvar ping-pong of n round trips with M / CV between two parties that yield with `yield` at the barrier.
template <class M, class CV, class Spawn, class Yield>
RunResult condvar_pingpong(std::uint64_t n, Spawn spawn, Yield yield) {
  PingPong<M, CV> pp;
  TwoParty tp;
  auto a = spawn(0, [&] { pingpong_party(pp, tp, 0, n, yield); });
  auto b = spawn(1, [&] { pingpong_party(pp, tp, 1, n, yield); });
  a.join();
  b.join();
  return {tp.elapsed(), n};
}

// ---------------------------------------------------------------------------------------------------------
// skyloft

// Where the cross-core parties actually ran, summed over all runs of the series (calibration included).
struct CrossPlacement {
  std::uint64_t same_worker = 0, other_worker = 0, migrations = 0, iterations = 0;
  int start_worker[2] = {-1, -1};  // of the last run
};
extern CrossPlacement g_cross_placement;  // written by the parties of sky_condvar(), read by main afterwards

// Condvar ping-pong of n round trips between two skyloft tasks pinned to core0 and core1; tracks placement
// in g_cross_placement when the cores differ.
RunResult sky_condvar(std::uint64_t n, int core0, int core1);

// std::thread rows: spawn+join, mutex and the 1-core condvar run in threads inheriting the main thread's pin
// to the one core; yield ping-pong pins both threads to it; the 2-core condvar pins one thread per core.
//
// Boost.Fiber rows: fibers on the main thread. Across cores: two kernel threads, each running the party in
// its main fiber; Boost wakes a fiber of another thread through that thread's scheduler (remote ready queue
// + the round_robin's condition variable).
using BoostMutex = boost::fibers::mutex;
using BoostCondVar = boost::fibers::condition_variable;

}  // namespace skyloft::bench::micro
