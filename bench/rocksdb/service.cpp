// service.cpp - GET and SCAN on the database, and their measured service times (service.hpp).
#include "service.hpp"

#include <algorithm>
#include <vector>

#include "skyloft/time.hpp"

namespace skyloft::rocksdb_server {
namespace {

std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::uint64_t quantile(std::vector<std::uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

}  // namespace

std::uint64_t Service::key_of(const wire::Request& r) const {
  const std::uint64_t h = mix64(r.id ^ mix64(r.send_ns));
  // A SCAN starts where scan_len entries remain (the database has at least scan_len keys).
  const std::uint64_t span = r.op == wire::Op::scan ? db_.keys() - scan_len_ + 1 : db_.keys();
  return h % span;
}

wire::Response Service::serve(const wire::Request& r) const {
  const std::uint64_t key = key_of(r);
  bool ok;
  if (r.op == wire::Op::scan) {
    ok = db_.scan(key, scan_len_) == scan_len_;
  } else {
    ok = db_.get(key);  // GET, and SET read as a GET: this server's data set is fixed
  }
  return {ok ? wire::Status::ok : wire::Status::rejected, r.id, r.service_ns, r.send_ns};
}

ServiceTimes Service::calibrate(int gets, int scans) const {
  (void)db_.scan(0, static_cast<std::uint32_t>(std::min<std::uint64_t>(db_.keys(), UINT32_MAX)));
  std::vector<std::uint64_t> g, s;
  for (int i = 0; i < gets; ++i) {
    const wire::Request r{wire::Op::get, static_cast<std::uint64_t>(i), 1, 0};
    const std::uint64_t t0 = skyloft::now_ns();
    (void)serve(r);
    g.push_back(skyloft::now_ns() - t0);
  }
  for (int i = 0; i < scans; ++i) {
    const wire::Request r{wire::Op::scan, static_cast<std::uint64_t>(i), 1, 0};
    const std::uint64_t t0 = skyloft::now_ns();
    (void)serve(r);
    s.push_back(skyloft::now_ns() - t0);
  }
  return {std::max<std::uint64_t>(1, quantile(g, 0.5)), std::max<std::uint64_t>(1, quantile(s, 0.5)), quantile(g, 0.9),
          quantile(s, 0.9), quantile(g, 0.999)};
}

}  // namespace skyloft::rocksdb_server
