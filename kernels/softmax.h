// Softmax / LogSoftmax along one axis of a tensor viewed as [outer, axis_len, inner].
// Numerically stable (subtract the max). In-place allowed.
#pragma once
#include <cstddef>

#include "kernels/parallel.h"

namespace convoy::kernels {

struct SoftmaxParams {
  size_t outer = 1, axis_len = 0, inner = 1;
  bool log = false;
};
void softmax(const SoftmaxParams& p, const float* in, float* out, const Parallel& par);

}  // namespace convoy::kernels
