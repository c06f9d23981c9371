// Naive ONNX LRN in double: y = x / (bias + alpha/size * sum_{window} x^2)^beta,
// window(c) = [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to [0, C).
#pragma once
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/lrn.h"

namespace convoy::ref {

inline std::vector<double> lrn_ref(const kernels::LrnParams& p, const float* in) {
  std::vector<double> out(p.N * p.C * p.HW);
  const long lo_off = static_cast<long>((p.size - 1) / 2);
  const long hi_off = static_cast<long>(p.size) - 1 - lo_off;  // ceil((size-1)/2)
  for (size_t n = 0; n < p.N; ++n)
    for (long c = 0; c < static_cast<long>(p.C); ++c)
      for (size_t j = 0; j < p.HW; ++j) {
        double s = 0;
        for (long k = c - lo_off; k <= c + hi_off; ++k) {
          if (k < 0 || k >= static_cast<long>(p.C)) continue;
          const double v = in[(n * p.C + static_cast<size_t>(k)) * p.HW + j];
          s += v * v;
        }
        const size_t i = (n * p.C + static_cast<size_t>(c)) * p.HW + j;
        out[i] = in[i] / std::pow(p.bias + p.alpha / static_cast<double>(p.size) * s, p.beta);
      }
  return out;
}

}  // namespace convoy::ref
