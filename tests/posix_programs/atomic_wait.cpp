// atomic_wait.cpp - C++20 waiting primitives that libstdc++ builds on the raw futex system call:
// std::atomic<T>::wait/notify, std::counting_semaphore, std::latch, std::barrier. With "tids" it also says
// how many kernel threads ran the waiting threads.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cstdio>
#include <cstring>
#include <latch>
#include <mutex>
#include <semaphore>
#include <set>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  std::mutex tids_lock;
  std::set<long> tids;
  auto note_tid = [&] {
    std::lock_guard g(tids_lock);
    tids.insert(syscall(SYS_gettid));
  };

  // A ping-pong on one atomic word: each side waits for the other's value.
  std::atomic<int> turn{0};
  constexpr int kRounds = 2000;
  std::thread other([&] {
    note_tid();
    for (int i = 0; i < kRounds; ++i) {
      turn.wait(2 * i);
      turn.store(2 * i + 2);
      turn.notify_one();
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    turn.store(2 * i + 1);
    turn.notify_one();
    turn.wait(2 * i + 1);
  }
  other.join();
  std::printf("atomic ping-pong ended at %d\n", turn.load());

  // A semaphore that admits three at a time.
  std::counting_semaphore<8> permits(3);
  std::atomic<int> inside{0}, most{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 12; ++i) {
    ts.emplace_back([&] {
      note_tid();
      for (int k = 0; k < 50; ++k) {
        permits.acquire();
        int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {}
        std::this_thread::yield();
        --inside;
        permits.release();
      }
    });
  }
  for (auto& t : ts) t.join();
  ts.clear();
  std::printf("semaphore: never more than 3 inside: %s\n", most.load() <= 3 ? "yes" : "no");

  // A latch all wait on, then a barrier with a completion step over three phases.
  std::latch start(8);
  int phases = 0;
  std::barrier sync(8, [&]() noexcept { ++phases; });
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&] {
      note_tid();
      start.arrive_and_wait();
      for (int p = 0; p < 3; ++p) sync.arrive_and_wait();
    });
  }
  for (auto& t : ts) t.join();
  std::printf("latch released; barrier phases %d\n", phases);
  if (argc > 1 && std::strcmp(argv[1], "tids") == 0) std::printf("kernel threads: %zu\n", tids.size());
  return 0;
}
