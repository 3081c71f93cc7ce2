// micro_gbench.cpp - the one-core skyloft microbenchmarks of micro/ as Google Benchmark cases, for
// tooling that consumes Google Benchmark output (--benchmark_format=json, comparisons with compare.py).
// skyloft_micro is the reference table (it also has the std::thread and Boost.Fiber columns); this variant
// only exists for the Google Benchmark ecosystem.
//
// Every case runs its timing loop inside one skyloft task (Runtime::block_on) on a one-core runtime with the
// fifo policy; the core is SKYLOFT_CORES if set, else the last allowed core. Times are wall-clock
// (UseRealTime) because the Google Benchmark thread itself only waits for the task.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "skyloft/skyloft.hpp"

namespace {

std::unique_ptr<skyloft::Runtime> g_rt;

void BM_SpawnJoin(benchmark::State& state) {
  g_rt->block_on([&] {
    for (auto _ : state) skyloft::spawn([] {}).join();
  });
}
BENCHMARK(BM_SpawnJoin)->UseRealTime();

// Two tasks yield in turn; the partner yields until the measuring task is done. Time per iteration is one
// yield of the measuring task plus one of the partner, reported as a rate of yields via items_processed.
void BM_YieldPingPong(benchmark::State& state) {
  g_rt->block_on([&] {
    std::atomic<bool> done{false};
    auto partner = skyloft::spawn([&] {
      while (!done.load(std::memory_order_relaxed)) skyloft::this_task::yield();
    });
    skyloft::this_task::yield();  // let the partner start
    for (auto _ : state) skyloft::this_task::yield();
    done.store(true, std::memory_order_relaxed);
    partner.join();
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 2);
  });
}
BENCHMARK(BM_YieldPingPong)->UseRealTime();

void BM_MutexUncontended(benchmark::State& state) {
  g_rt->block_on([&] {
    skyloft::Mutex m;
    for (auto _ : state) {
      m.lock();
      benchmark::DoNotOptimize(&m);
      m.unlock();
    }
  });
}
BENCHMARK(BM_MutexUncontended)->UseRealTime();

// One iteration = one round trip: the measuring task hands the turn to the partner and waits for it back.
void BM_CondVarPingPong(benchmark::State& state) {
  g_rt->block_on([&] {
    skyloft::Mutex m;
    skyloft::CondVar cv[2];
    int turn = 0;
    bool stop = false;
    auto partner = skyloft::spawn([&] {
      std::unique_lock<skyloft::Mutex> lk(m);
      for (;;) {
        cv[1].wait(lk, [&] { return turn == 1 || stop; });
        if (stop) return;
        turn = 0;
        cv[0].notify_one();
      }
    });
    for (auto _ : state) {
      std::unique_lock<skyloft::Mutex> lk(m);
      turn = 1;
      cv[1].notify_one();
      cv[0].wait(lk, [&] { return turn == 0; });
    }
    {
      std::unique_lock<skyloft::Mutex> lk(m);
      stop = true;
      cv[1].notify_one();
    }
    partner.join();
  });
}
BENCHMARK(BM_CondVarPingPong)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  skyloft::Config cfg = skyloft::Config::from_env();
  cfg.policy = "fifo";
  if (!std::getenv("SKYLOFT_CORES")) cfg.cores = std::to_string(skyloft::allowed_cores().back());
  g_rt = std::make_unique<skyloft::Runtime>(cfg);
  benchmark::AddCustomContext("skyloft.cores", *cfg.cores);
  benchmark::AddCustomContext("skyloft.spin_us", std::to_string(cfg.spin_us));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_rt->shutdown();
  g_rt.reset();
  return 0;
}
