// Naive NCHW convolution in double (ONNX Conv: groups, strides, dilations, pads), plus epilogue.
// Output [N][M][OH][OW] and per-element sum of term magnitudes.
#pragma once
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/conv2d.h"
#include "reference/gemm_ref.h"

namespace convoy::ref {

// w: ONNX layout [M][C/group][KH][KW].
inline void conv2d_ref(const kernels::Conv2dParams& p, const float* in, const float* w, std::vector<double>& out,
                       std::vector<double>& mag) {
  const size_t Cg = p.C / p.group, Mg = p.M / p.group;
  out.assign(p.N * p.M * p.OH * p.OW, 0.0);
  mag.assign(out.size(), 0.0);
  for (size_t n = 0; n < p.N; ++n)
    for (size_t m = 0; m < p.M; ++m) {
      const size_t g = m / Mg;
      for (size_t oh = 0; oh < p.OH; ++oh)
        for (size_t ow = 0; ow < p.OW; ++ow) {
          double s = 0, mg = 0;
          for (size_t c = 0; c < Cg; ++c)
            for (size_t kh = 0; kh < p.KH; ++kh)
              for (size_t kw = 0; kw < p.KW; ++kw) {
                const long ih = static_cast<long>(oh * p.stride_h + kh * p.dil_h) - static_cast<long>(p.pad_top);
                const long iw = static_cast<long>(ow * p.stride_w + kw * p.dil_w) - static_cast<long>(p.pad_left);
                if (ih < 0 || iw < 0 || ih >= static_cast<long>(p.H) || iw >= static_cast<long>(p.W)) continue;
                const double x = in[((n * p.C + g * Cg + c) * p.H + static_cast<size_t>(ih)) * p.W + static_cast<size_t>(iw)];
                const double y = w[((m * Cg + c) * p.KH + kh) * p.KW + kw];
                s += x * y;
                mg += std::abs(x * y);
              }
          const size_t o = ((n * p.M + m) * p.OH + oh) * p.OW + ow;
          if (p.ep.bias) {
            s += p.ep.bias[m];
            mg += std::abs(static_cast<double>(p.ep.bias[m]));
          }
          if (p.ep.residual) {
            s += p.ep.residual[o];
            mg += std::abs(static_cast<double>(p.ep.residual[o]));
          }
          out[o] = activation_ref(s, p.ep);
          mag[o] = mg;
        }
    }
}

}  // namespace convoy::ref
