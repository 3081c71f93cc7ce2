// inprocess.hpp - the in-process open-loop generator's pieces (inprocess.cpp), shared with other benchmarks
// that serve the same request stream (bench/lcbe/): one load point's request slots, the Linux thread
// pool with one FIFO, and the generator loop of one point.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "report.hpp"
#include "skyloft/runtime.hpp"
#include "server_options.hpp"

namespace skyloft::synthetic {

inline constexpr std::uint64_t kNotDone = UINT64_MAX;

// The requests of one load point; each slot is written by the one request that owns it. The schedule
// (intended, service) is drawn in full before the first submit, so its size is known from then on.
struct PointState {
  const RequestHandler* serve = nullptr;  // the request code (ServerOptions::serve)
  std::vector<std::uint64_t> intended, service, done_at;
  std::vector<wire::Op> op;
  std::atomic<std::uint64_t> finished{0};  // written by the requests, read by the generator
  std::atomic<bool> cancel{false};
  std::uint64_t measure_from = 0, send_end = 0;  // the measured window of intended times (set before any submit)

  bool in_window(std::uint64_t t) const noexcept { return t >= measure_from && t < send_end; }
  // The request body: serves the slot's request (unless cancelled) and records its completion.
  void run(std::size_t slot);
};

// A FIFO of request slots served by kernel threads (pool_size(o) of them, placed by pool_pin).
class LinuxPool {
 public:
  explicit LinuxPool(const ServerOptions& o);
  ~LinuxPool();
  void submit(PointState* s, std::size_t slot);
  std::size_t size() const { return threads_.size(); }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::pair<PointState*, std::size_t>> q_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// One load point at `rate`: warm-up, measured window, drain (o.warmup_ns, o.duration_ns, o.drain_ns), with
// the arrival process and mix of `o`. The calling thread is the generator; `submit` hands each request
// (its state and slot) to the server. Requests unserved after the drain are cancelled and counted.
// `inspect`, when given, sees the finished point's slots (every request has returned) before they go.
// With `poller_rt` the runtime's polling thread releases the arrivals (Runtime::add_poller) and the calling
// thread only waits; otherwise the calling thread releases them itself, waiting as o.gen_wait says.
loadgen::PointResult run_point(const ServerOptions& o, double rate,
                               const std::function<void(PointState*, std::size_t)>& submit,
                               const std::function<void(const PointState&)>& inspect = {},
                               skyloft::Runtime* poller_rt = nullptr);

}  // namespace skyloft::synthetic
