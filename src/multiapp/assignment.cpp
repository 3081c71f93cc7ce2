// assignment.cpp - LC apps first (at least --min-lc-cores), the rest shared by BE apps; see assignment.hpp.
#include "multiapp/assignment.hpp"

#include <algorithm>

namespace skyloft::multiapp {

std::vector<std::uint32_t> Assignment::eligible_cores(std::uint32_t app_id) const {
  std::vector<std::uint32_t> out;
  if (app_id >= kMaxApps) return out;
  for (std::uint32_t i = 0; i < cores.size(); ++i) {
    if (cores[i].eligible & (1u << app_id)) out.push_back(i);
  }
  return out;
}

Assignment assign_cores(std::uint32_t ncores, std::uint32_t min_lc_cores, std::span<const AppDemand> apps) {
  Assignment a;
  a.cores.resize(ncores);
  std::vector<AppDemand> lc, be;
  for (const AppDemand& d : apps) (d.app_class == AppClass::lc ? lc : be).push_back(d);

  std::uint32_t lc_cores = 0;
  if (!lc.empty()) {
    std::uint64_t want = 0;
    for (const AppDemand& d : lc) want += std::max<std::uint32_t>(d.demand, 1);
    want = std::max<std::uint64_t>(want, min_lc_cores);
    lc_cores = be.empty() ? ncores : static_cast<std::uint32_t>(std::min<std::uint64_t>(want, ncores));
  }

  // 1. LC blocks by demand, then the leftover LC cores round-robin, then starved LC apps share.
  std::uint32_t next = 0;
  std::vector<bool> starved(lc.size(), false);
  for (std::size_t i = 0; i < lc.size(); ++i) {
    std::uint32_t take = std::min(std::max<std::uint32_t>(lc[i].demand, 1), lc_cores - next);
    if (take == 0) starved[i] = true;
    for (std::uint32_t k = 0; k < take; ++k, ++next) {
      a.cores[next].owner = static_cast<int>(lc[i].id);
      a.cores[next].eligible = 1u << lc[i].id;
      a.cores[next].lc = true;
    }
  }
  for (std::size_t i = 0; next < lc_cores; ++next, ++i) {
    const AppDemand& d = lc[i % lc.size()];
    a.cores[next].owner = static_cast<int>(d.id);
    a.cores[next].eligible = 1u << d.id;
    a.cores[next].lc = true;
  }
  for (std::size_t i = 0; i < lc.size(); ++i) {
    if (!starved[i]) continue;
    for (std::uint32_t c = 0; c < lc_cores; ++c) a.cores[c].eligible |= 1u << lc[i].id;
  }

  // 2. BE cores: shared by every BE app, owners round-robin.
  std::uint32_t all_be = 0;
  for (const AppDemand& d : be) all_be |= 1u << d.id;
  if (!be.empty()) {
    for (std::uint32_t c = lc_cores, k = 0; c < ncores; ++c, ++k) {
      a.cores[c].owner = static_cast<int>(be[k % be.size()].id);
      a.cores[c].eligible = all_be;
      a.cores[c].lc = false;
    }
  }

  // 3. The lcbe rule at run time: LC apps have priority on every core, so each keeps a worker everywhere
  //    and takes a BE core while it has queued work; LC cores beyond the --min-lc-cores reserve go back to
  //    the BE apps while no LC app has work for them, so BE apps keep a worker there too.
  std::uint32_t all_lc = 0;
  for (const AppDemand& d : lc) all_lc |= 1u << d.id;
  const std::uint32_t reserved = lc.empty() ? 0 : std::min(min_lc_cores, ncores);
  for (std::uint32_t c = 0; c < ncores; ++c) {
    a.cores[c].eligible |= all_lc;
    if (c >= reserved) a.cores[c].eligible |= all_be;
  }
  return a;
}

}  // namespace skyloft::multiapp
