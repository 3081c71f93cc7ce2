// workload.cpp - the non-template parts of skyloft_micro's workloads: the yields and the skyloft condvar
// ping-pong with its placement tracking.
#include "workload.hpp"

namespace skyloft::bench::micro {

void sky_yield() { skyloft::this_task::yield(); }
void std_yield() { std::this_thread::yield(); }
void boost_yield() { boost::this_fiber::yield(); }

CrossPlacement g_cross_placement;

RunResult sky_condvar(std::uint64_t n, int core0, int core1) {
  PingPong<skyloft::Mutex, skyloft::CondVar> pp;
  TwoParty tp;
  const bool track = core0 != core1;
  auto where = [] { return skyloft::this_task::worker_index(); };
  auto body = [&](int id) {
    g_cross_placement.start_worker[id] = skyloft::this_task::worker_index();
    if (track) pingpong_party(pp, tp, id, n, sky_yield, where);
    else pingpong_party(pp, tp, id, n, sky_yield);
  };
  auto a = skyloft::spawn([&] { body(0); }, skyloft::SpawnOptions{.stack_size = 0, .core = core0, .pin = true});
  auto b = skyloft::spawn([&] { body(1); }, skyloft::SpawnOptions{.stack_size = 0, .core = core1, .pin = true});
  a.join();
  b.join();
  if (track) {
    g_cross_placement.same_worker += pp.same_worker;
    g_cross_placement.other_worker += pp.other_worker;
    g_cross_placement.migrations += pp.migrations[0] + pp.migrations[1];
    g_cross_placement.iterations += 2 * n;
  }
  return {tp.elapsed(), n};
}

}  // namespace skyloft::bench::micro
