// global_fifo_main.cpp - runs a few yielding and sleeping tasks on the example policy "global_fifo",
// registered with skyloft::register_policy before the runtime starts.
//
//   skyloft_global_fifo [tasks]     (default 64)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "global_fifo_policy.hpp"
#include "skyloft/skyloft.hpp"

int main(int argc, char** argv) {
  const int tasks = argc > 1 ? std::atoi(argv[1]) : 64;
  if (tasks <= 0) {
    std::fprintf(stderr, "usage: %s [tasks > 0]\n", argv[0]);
    return 2;
  }
  skyloft_examples::register_global_fifo_policy();
  skyloft::Config config = skyloft::Config::from_env();
  config.policy = "global_fifo";
  skyloft::Runtime rt(config);
  std::atomic<long> yields{0};
  const auto t0 = std::chrono::steady_clock::now();
  rt.block_on([&] {
    std::vector<skyloft::JoinHandle> hs;
    for (int i = 0; i < tasks; ++i) {
      hs.push_back(skyloft::spawn([&yields, i] {
        for (int r = 0; r < 1000; ++r) {
          skyloft::this_task::yield();
          yields.fetch_add(1, std::memory_order_relaxed);
        }
        if (i % 8 == 0) skyloft::this_task::sleep_for(std::chrono::milliseconds(1));
      }));
    }
    for (auto& h : hs) h.join();
  });
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("policy %.*s on %zu workers: %d tasks, %ld yields in %.1f ms\n",
              static_cast<int>(rt.policy_name().size()), rt.policy_name().data(), rt.num_workers(), tasks,
              yields.load(), ms);
  rt.policy().dump(stdout);
  return rt.shutdown().clean() ? 0 : 1;
}
