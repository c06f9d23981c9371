// Local response normalisation across channels (ONNX LRN):
//   y = x / (bias + alpha/size * sum_{c' in window(c)} x[c']^2)^beta,
//   window(c) = [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to [0, C).
#pragma once
#include <cstddef>

#include "kernels/parallel.h"

namespace convoy::kernels {

struct LrnParams {
  size_t N = 1, C = 0, HW = 0;
  size_t size = 1;
  float alpha = 1e-4f, beta = 0.75f, bias = 1.f;
};
void lrn(const LrnParams& p, const float* in, float* out, const Parallel& par);

}  // namespace convoy::kernels
