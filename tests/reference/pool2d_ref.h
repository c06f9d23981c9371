// Naive pooling in double, ONNX semantics (see kernels/pool2d.h): max skips positions outside
// the input (an empty window gives the lowest float, as ONNX Runtime); average divides by the
// in-input count (count_include_pad = 0) or by the count of positions inside the padded input
// [-pad_begin, size + pad_end) (count_include_pad = 1).
#pragma once
#include <cstddef>
#include <limits>
#include <vector>

#include "kernels/pool2d.h"

namespace convoy::ref {

inline std::vector<double> pool2d_ref(const kernels::Pool2dParams& p, const float* in) {
  std::vector<double> out(p.N * p.C * p.OH * p.OW);
  const long H = static_cast<long>(p.H), W = static_cast<long>(p.W);
  for (size_t nc = 0; nc < p.N * p.C; ++nc)
    for (size_t oh = 0; oh < p.OH; ++oh)
      for (size_t ow = 0; ow < p.OW; ++ow) {
        double mx = -std::numeric_limits<double>::infinity(), sum = 0;
        size_t valid = 0, padded = 0;
        for (size_t kh = 0; kh < p.KH; ++kh)
          for (size_t kw = 0; kw < p.KW; ++kw) {
            const long ih = static_cast<long>(oh * p.stride_h + kh * p.dil_h) - static_cast<long>(p.pad_top);
            const long iw = static_cast<long>(ow * p.stride_w + kw * p.dil_w) - static_cast<long>(p.pad_left);
            const bool in_padded = ih >= -static_cast<long>(p.pad_top) && ih < H + static_cast<long>(p.pad_bottom) &&
                                   iw >= -static_cast<long>(p.pad_left) && iw < W + static_cast<long>(p.pad_right);
            if (in_padded) ++padded;
            if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
            const double v = in[(nc * p.H + static_cast<size_t>(ih)) * p.W + static_cast<size_t>(iw)];
            mx = v > mx ? v : mx;
            sum += v;
            ++valid;
          }
        double r;
        if (p.kind == kernels::PoolKind::kMax) {
          r = valid ? mx : std::numeric_limits<float>::lowest();
        } else {
          const size_t cnt = p.count_include_pad ? padded : valid;
          r = cnt ? sum / static_cast<double>(cnt) : 0.0;
        }
        out[(nc * p.OH + oh) * p.OW + ow] = r;
      }
  return out;
}

inline std::vector<double> global_pool_ref(const kernels::GlobalPoolParams& p, const float* in) {
  std::vector<double> out(p.NC);
  for (size_t i = 0; i < p.NC; ++i) {
    double mx = -std::numeric_limits<double>::infinity(), sum = 0;
    for (size_t j = 0; j < p.HW; ++j) {
      const double v = in[i * p.HW + j];
      mx = v > mx ? v : mx;
      sum += v;
    }
    out[i] = p.kind == kernels::PoolKind::kMax ? mx : sum / static_cast<double>(p.HW);
  }
  return out;
}

}  // namespace convoy::ref
