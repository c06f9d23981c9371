// Gradient of a per-channel bias: db[c] = sum over outer and inner of dy[o, c, i], for dy laid
// out [outer, C, inner] (conv: outer = N, inner = OH*OW; Gemm with bias per output column:
// outer = rows, inner = 1). Overwrites db, or adds when `accumulate`. Split over channels.
#pragma once
#include <cstddef>

#include "kernels/parallel.h"

namespace convoy::kernels {

struct BiasGradParams {
  size_t outer = 1, C = 0, inner = 1;
  bool accumulate = false;
};
void bias_backward(const BiasGradParams& p, const float* dy, float* db, const Parallel& par);

}  // namespace convoy::kernels
