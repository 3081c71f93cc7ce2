// report.hpp - one load point's results, and the table and CSV they are reported in.
//
// CSV columns (one row per load point; latencies in microseconds, slowdowns unitless):
//   label           the run's --label (a configuration name for plots; may be empty)
//   target_rps      the offered rate the schedule was drawn for
//   achieved_rps    requests actually sent in the measured window / the window
//   completed_rps   responses received in the measured window / the window
//   sent            requests whose intended send time fell in the measured window
//   completed       of those, the ones answered
//   unanswered      of those, the ones still unanswered when the drain period ended (lost or too late); they
//                   are in the latency columns with their age at the end, a lower bound, so an overloaded
//                   point cannot look fast by losing its slow requests
//   errors          replies that were errors or could not be matched to a request, plus failed sends
//   p50_us .. p9999_us, max_us, mean_us
//                   latency from the INTENDED send time to the reception of the reply
//   slow_p50, slow_p99, slow_p999
//                   slowdown: latency / the request's service time (empty when the protocol carries none)
//   send_lag_p99_us how late the generator sent (actual - intended), p99: the generator's own share of the
//                   latency, which it cannot hide
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "histogram.hpp"

namespace skyloft::loadgen {

struct PointResult {
  std::string label;
  double target_rps = 0;
  double window_s = 0;          // length of the measured window
  std::uint64_t sent_in_window = 0;       // by actual send time (achieved rate)
  std::uint64_t completed_in_window = 0;  // by reception time (completed rate)
  std::uint64_t sent = 0, completed = 0, unanswered = 0, errors = 0;
  bool has_service_time = true;
  Histogram latency_ns;      // of requests intended in the window
  Histogram slowdown_milli;  // slowdown * 1000
  Histogram send_lag_ns;

  double achieved_rps() const { return window_s > 0 ? static_cast<double>(sent_in_window) / window_s : 0; }
  double completed_rps() const { return window_s > 0 ? static_cast<double>(completed_in_window) / window_s : 0; }
  // Adds another generator thread's share (counts and histograms; target and window stay).
  void merge(const PointResult& o);
};

// The CSV header line (with '\n'), matching csv_row.
std::string csv_header();
std::string csv_row(const PointResult& r);

// Prints the results as an aligned table on stdout.
void print_points(const std::vector<PointResult>& points);

}  // namespace skyloft::loadgen
