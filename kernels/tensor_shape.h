// Small fixed-capacity shape/stride arrays for the data-movement and broadcasting kernels.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convoy::kernels {

inline constexpr size_t kMaxRank = 8;

struct Dims {
  size_t rank = 0;
  int64_t d[kMaxRank] = {};
};

}  // namespace convoy::kernels
