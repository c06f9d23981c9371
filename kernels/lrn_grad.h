// Backward of ONNX LRN (kernels/lrn.h): dx from the forward input x and dy (the scale is
// recomputed). dx is overwritten.
#pragma once
#include <cstddef>

#include "kernels/lrn.h"
#include "kernels/parallel.h"

namespace convoy::kernels {

void lrn_backward(const LrnParams& p, const float* x, const float* dy, float* dx, const Parallel& par);

}  // namespace convoy::kernels
