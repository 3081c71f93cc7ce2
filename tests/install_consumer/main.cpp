// main.cpp - the install check's consumer: starts a runtime from the installed headers and library, runs
// guarded and guardless tasks through a WaitGroup and a Mutex, and prints one line. Exit status 0 = works.
#include <cstdio>

#include <skyloft/skyloft.hpp>

int main() {
  skyloft::Config cfg;
  cfg.cores = skyloft::format_core_list({skyloft::allowed_cores().front()});
  skyloft::Runtime rt(cfg);
  constexpr int kTasks = 1000;
  int sum = 0;
  rt.block_on([&] {
    skyloft::Mutex m;
    skyloft::WaitGroup wg(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      skyloft::SpawnOptions o;
      o.guard = i % 2 ? skyloft::StackGuard::off : skyloft::StackGuard::on;
      skyloft::spawn(
          [&, i] {
            skyloft::this_task::yield();
            {
              std::lock_guard<skyloft::Mutex> g(m);
              sum += i;
            }
            wg.done();
          },
          o)
          .detach();
    }
    wg.wait();
  });
  const bool clean = rt.shutdown().clean();
  const int expected = kTasks * (kTasks - 1) / 2;
  std::printf("install consumer: %d tasks, sum %d (expected %d), shutdown %s\n", kTasks, sum, expected,
              clean ? "clean" : "NOT clean");
  return sum == expected && clean ? 0 : 1;
}
