// Reduction over the middle axis of a tensor viewed as [outer, len, inner] -> [outer, inner].
// Non-contiguous axis sets are made contiguous by the planner (transpose) first.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/parallel.h"

namespace convoy::kernels {

enum class ReduceKind : uint8_t { kMean, kSum, kMax, kMin, kProd, kSumSquare, kL2, kLogSumExp };

struct ReduceParams {
  size_t outer = 1, len = 0, inner = 1;
  ReduceKind kind = ReduceKind::kMean;
};
void reduce(const ReduceParams& p, const float* in, float* out, const Parallel& par);

}  // namespace convoy::kernels
