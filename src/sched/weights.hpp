// weights.hpp - Linux's nice -> load weight table and virtual-time scaling, shared by cfs and eevdf.
#pragma once

#include <algorithm>
#include <cstdint>

namespace skyloft {

inline constexpr std::int64_t kNice0Weight = 1024;

// Linux's sched_prio_to_weight: each nice step is ~1.25x CPU share; nice 0 is 1024.
inline constexpr std::uint32_t kNiceToWeight[40] = {
    /* -20 */ 88761, 71755, 56483, 46273, 36291,
    /* -15 */ 29154, 23254, 18705, 14949, 11916,
    /* -10 */ 9548,  7620,  6100,  4904,  3906,
    /*  -5 */ 3121,  2501,  1991,  1586,  1277,
    /*   0 */ 1024,  820,   655,   526,   423,
    /*   5 */ 335,   272,   215,   172,   137,
    /*  10 */ 110,   87,    70,    56,    45,
    /*  15 */ 36,    29,    23,    18,    15,
};

inline std::uint32_t nice_to_weight(int nice) noexcept { return kNiceToWeight[std::clamp(nice, -20, 19) + 20]; }

// Virtual time for `ns` of real time at weight `w`: ns * 1024 / w (Linux calc_delta_fair).
inline std::int64_t to_virtual(std::int64_t ns, std::int64_t w) noexcept {
  return static_cast<std::int64_t>(static_cast<__int128>(ns) * kNice0Weight / w);
}

}  // namespace skyloft
