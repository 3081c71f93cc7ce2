// multiapp_app.cpp - a small skyloft application for the multi-application tests (test_multiapp.cpp): it
// joins the daemon named by SKYLOFT_DAEMON with the class in SKYLOFT_APP_CLASS, prints "ready <app id>"
// once its runtime runs, does one kind of work for a while, then prints one result line and exits 0.
//
//   multiapp_app spin MS        one task per worker, each counting in a loop with a preempt point (the
//                               way a BE batch job runs): "spin <total> <per-task counts...>"
//   multiapp_app hog MS         the same without the preempt point (a task that never reaches the
//                               scheduler by itself): "hog <total> <per-task counts...>"
//   multiapp_app libc MS        the same, each iteration a ~10 us memchr, so that a preemption signal
//                               mostly finds the task inside libc (deferred): "libc <total> <counts...>"
//   multiapp_app sleeper MS US  one task sleeping US microseconds at a time and timing how late it wakes
//                               (an LC server's wake-ups): "sleeper <iterations> <p50 us> <p99 us> <max us>"
//   multiapp_app burst MS       an LC-style request loop: a task wakes every 2 ms and spawns short
//                               requests, one per worker: "burst <requests>"
// Any other argument: usage on stderr, exit 2. A runtime that cannot start: its message, exit 1.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "skyloft/skyloft.hpp"

namespace {

using Clock = std::chrono::steady_clock;

int usage() {
  std::fprintf(stderr, "usage: multiapp_app spin MS | hog MS | libc MS | sleeper MS US | burst MS\n");
  return 2;
}

long arg_number(const char* s) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  return (end == s || *end != '\0' || v <= 0) ? -1 : v;
}

void ready(skyloft::Runtime&) {
  const char* id = std::getenv("SKYLOFT_APP_NAME");
  std::printf("ready %s\n", id != nullptr ? id : "-");
  std::fflush(stdout);
}

enum class Spin { points, hog, libc };

// spin, hog and libc.
int spin(skyloft::Runtime& rt, long ms, Spin kind) {
  static std::vector<char> haystack(256 * 1024);  // zeros: memchr reads it all
  const int n = static_cast<int>(skyloft::allowed_cores().size());
  std::vector<std::atomic<std::uint64_t>> counts(static_cast<std::size_t>(n));
  std::atomic<bool> stop{false};
  std::vector<skyloft::JoinHandle> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(skyloft::spawn([&, i] {
      std::uint64_t c = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        ++c;
        if (kind == Spin::libc) {
          c += std::memchr(haystack.data(), 1, haystack.size()) != nullptr;  // never found
          counts[static_cast<std::size_t>(i)].store(c, std::memory_order_relaxed);
          continue;
        }
        if ((c & 63) == 0) counts[static_cast<std::size_t>(i)].store(c, std::memory_order_relaxed);
        if (kind == Spin::points) skyloft::preempt_point();
      }
      counts[static_cast<std::size_t>(i)].store(c, std::memory_order_relaxed);
    }));
  }
  ready(rt);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  stop.store(true);
  for (auto& t : tasks) t.join();
  std::uint64_t total = 0;
  std::string per;
  for (auto& c : counts) {
    total += c.load();
    per += " " + std::to_string(c.load());
  }
  const char* name = kind == Spin::points ? "spin" : kind == Spin::hog ? "hog" : "libc";
  std::printf("%s %llu%s\n", name, static_cast<unsigned long long>(total), per.c_str());
  return 0;
}

int sleeper(skyloft::Runtime& rt, long ms, long us) {
  std::vector<double> late;
  std::atomic<bool> stop{false};
  skyloft::JoinHandle t = skyloft::spawn([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const auto want = Clock::now() + std::chrono::microseconds(us);
      skyloft::this_task::sleep_for(std::chrono::microseconds(us));
      late.push_back(std::chrono::duration<double, std::micro>(Clock::now() - want).count());
    }
  });
  ready(rt);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  stop.store(true);
  t.join();
  std::sort(late.begin(), late.end());
  auto at = [&](double q) { return late.empty() ? 0.0 : late[static_cast<std::size_t>(q * static_cast<double>(late.size() - 1))]; };
  std::printf("sleeper %zu %.1f %.1f %.1f\n", late.size(), at(0.5), at(0.99), late.empty() ? 0.0 : late.back());
  return 0;
}

int burst(skyloft::Runtime& rt, long ms) {
  const int n = static_cast<int>(skyloft::allowed_cores().size());
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> stop{false};
  skyloft::JoinHandle t = skyloft::spawn([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      skyloft::this_task::sleep_for(std::chrono::milliseconds(2));
      std::vector<skyloft::JoinHandle> reqs;
      for (int i = 0; i < n; ++i) {
        reqs.push_back(skyloft::spawn([&] {
          const auto until = Clock::now() + std::chrono::microseconds(50);
          while (Clock::now() < until) skyloft::preempt_point();
          done.fetch_add(1, std::memory_order_relaxed);
        }));
      }
      for (auto& r : reqs) r.join();
    }
  });
  ready(rt);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  stop.store(true);
  t.join();
  std::printf("burst %llu\n", static_cast<unsigned long long>(done.load()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string mode = argv[1];
  const long ms = arg_number(argv[2]);
  if (ms < 0) return usage();
  try {
    skyloft::Runtime rt;
    int rc;
    if ((mode == "spin" || mode == "hog" || mode == "libc") && argc == 3) {
      rc = spin(rt, ms, mode == "spin" ? Spin::points : mode == "hog" ? Spin::hog : Spin::libc);
    } else if (mode == "sleeper" && argc == 4 && arg_number(argv[3]) > 0) {
      rc = sleeper(rt, ms, arg_number(argv[3]));
    } else if (mode == "burst" && argc == 3) {
      rc = burst(rt, ms);
    } else {
      return usage();
    }
    std::fflush(stdout);
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
