// cxx_threads.cpp - the C++ standard library's threads on top of pthreads: std::thread, mutexes, condition
// variables (also timed), std::async, std::jthread with stop tokens, shared_mutex, call_once.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <numeric>
#include <shared_mutex>
#include <thread>
#include <vector>

int main() {
  using namespace std::chrono_literals;
  std::mutex m;
  std::condition_variable cv;
  long counter = 0;
  int turn = 0;
  std::vector<std::thread> threads;
  for (int id = 0; id < 4; ++id) {
    threads.emplace_back([&, id] {
      for (int round = 0; round < 200; ++round) {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return turn % 4 == id; });  // strict round robin between the four
        ++counter;
        ++turn;
        cv.notify_all();
      }
    });
  }
  for (auto& t : threads) t.join();
  std::printf("round robin counter %ld turn %d\n", counter, turn);

  {
    std::unique_lock lock(m);
    bool woke = cv.wait_for(lock, 20ms, [] { return false; });
    std::printf("wait_for with no notify: %s\n", woke ? "woke" : "timed out");
  }

  std::vector<std::future<long>> parts;
  for (long i = 0; i < 8; ++i) {
    parts.push_back(std::async(std::launch::async, [i] {
      long s = 0;
      for (long k = i * 1000; k < (i + 1) * 1000; ++k) s += k;
      return s;
    }));
  }
  long total = 0;
  for (auto& f : parts) total += f.get();
  std::printf("async sum %ld\n", total);

  std::promise<int> promise;
  auto fut = promise.get_future();
  std::thread setter([&] {
    std::this_thread::sleep_for(10ms);
    promise.set_value(99);
  });
  std::printf("future before value: %s\n", fut.wait_for(1ms) == std::future_status::timeout ? "timeout" : "ready");
  std::printf("future value %d\n", fut.get());
  setter.join();

  long ticks = 0;
  {
    std::jthread worker([&ticks](std::stop_token st) {
      while (!st.stop_requested()) {
        ++ticks;
        std::this_thread::sleep_for(1ms);
      }
    });
    std::this_thread::sleep_for(20ms);
  }  // requests stop and joins
  std::printf("jthread stopped after ticking: %s\n", ticks > 0 ? "yes" : "no");

  std::shared_mutex sm;
  long shared_value = 0;
  std::vector<std::thread> rw;
  for (int i = 0; i < 4; ++i) {
    rw.emplace_back([&, i] {
      for (int k = 0; k < 500; ++k) {
        if (i == 0) {
          std::unique_lock w(sm);
          ++shared_value;
        } else {
          std::shared_lock r(sm);
          (void)shared_value;
        }
      }
    });
  }
  for (auto& t : rw) t.join();
  std::printf("shared_mutex writes %ld\n", shared_value);

  std::timed_mutex tm;
  tm.lock();
  std::thread tt([&] { std::printf("try_lock_for on a held timed_mutex: %s\n", tm.try_lock_for(10ms) ? "got it" : "timed out"); });
  tt.join();
  tm.unlock();

  std::once_flag flag;
  int once_runs = 0;
  std::vector<std::thread> once_threads;
  for (int i = 0; i < 4; ++i) once_threads.emplace_back([&] { std::call_once(flag, [&] { ++once_runs; }); });
  for (auto& t : once_threads) t.join();
  std::printf("call_once ran %d time(s)\n", once_runs);
  std::thread other([] {});
  std::printf("thread ids differ: %s\n", std::this_thread::get_id() != other.get_id() ? "yes" : "no");
  other.join();
  return 0;
}
