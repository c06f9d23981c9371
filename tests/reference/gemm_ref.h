// Naive batched GEMM + epilogue in double, straight from the contract in kernels/gemm.h.
// Returns dense [batch][M][N] values and, per element, the sum of the magnitudes of every
// term (for an error bound that scales with the reduction length).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/activation.h"
#include "kernels/gemm.h"

namespace convoy::ref {

inline double activation_ref(double v, const kernels::Epilogue& ep) {
  switch (ep.act) {
    case kernels::Activation::kNone:
      return v;
    case kernels::Activation::kRelu:
      return v < 0 ? 0 : v;
    case kernels::Activation::kLeakyRelu:
      return v < 0 ? v * ep.alpha : v;
    case kernels::Activation::kClip:
      return v < ep.alpha ? ep.alpha : (v > ep.beta ? ep.beta : v);
  }
  return v;
}

// c_in: C before the call (read only when beta != 0); residual from p.ep (C's layout).
inline void gemm_ref(const kernels::GemmParams& p, const float* a, const float* b, const float* c_in,
                     std::vector<double>& out, std::vector<double>& mag) {
  out.assign(p.batch * p.M * p.N, 0.0);
  mag.assign(out.size(), 0.0);
  for (size_t bi = 0; bi < p.batch; ++bi) {
    for (size_t i = 0; i < p.M; ++i) {
      for (size_t j = 0; j < p.N; ++j) {
        double s = 0, m = 0;
        for (size_t k = 0; k < p.K; ++k) {
          const double x = a[static_cast<ptrdiff_t>(bi) * p.a_bs + static_cast<ptrdiff_t>(i) * p.a_rs +
                             static_cast<ptrdiff_t>(k) * p.a_cs];
          const double y = b[static_cast<ptrdiff_t>(bi) * p.b_bs + static_cast<ptrdiff_t>(k) * p.b_rs +
                             static_cast<ptrdiff_t>(j) * p.b_cs];
          s += x * y;
          m += std::abs(x * y);
        }
        double v = p.alpha * s;
        m *= std::abs(p.alpha);
        const ptrdiff_t ci = static_cast<ptrdiff_t>(bi) * p.c_bs + static_cast<ptrdiff_t>(i * p.ldc + j);
        if (p.beta != 0.f) {
          v += p.beta * static_cast<double>(c_in[ci]);
          m += std::abs(p.beta * static_cast<double>(c_in[ci]));
        }
        if (p.ep.bias) {
          const double bv = p.ep.bias[p.ep.bias_per_row ? i : j];
          v += bv;
          m += std::abs(bv);
        }
        if (p.ep.residual) {
          v += p.ep.residual[ci];
          m += std::abs(static_cast<double>(p.ep.residual[ci]));
        }
        out[(bi * p.M + i) * p.N + j] = activation_ref(v, p.ep);
        mag[(bi * p.M + i) * p.N + j] = m;
      }
    }
  }
}

}  // namespace convoy::ref
