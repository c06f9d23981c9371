// ONNX LRN, vectorised over HW: each task handles one image and a run of kChunk columns, and for
// every channel sums the squares of its channel window (direct sum, window sizes are small).
// y = x * exp(-beta * log(bias + alpha/size * sum)).
#include <algorithm>
#include <cmath>

#include "kernels/lrn.h"

#ifndef CONVOY_KERNELS_LRN_SHARED
#define CONVOY_KERNELS_LRN_SHARED
namespace convoy::kernels::lrn_detail {
inline constexpr size_t kChunk = 512;  // columns per task (multiple of every vector length)
}  // namespace convoy::kernels::lrn_detail
#endif  // CONVOY_KERNELS_LRN_SHARED

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/lrn.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void lrn_impl(const LrnParams& p, const float* in, float* out, const Parallel* par) {
  using lrn_detail::kChunk;
  if (p.N == 0 || p.C == 0 || p.HW == 0) return;
  const size_t chunks = (p.HW + kChunk - 1) / kChunk;
  const size_t before = (p.size - 1) / 2;  // floor((size-1)/2)
  const size_t after = p.size / 2;         // ceil((size-1)/2)
  const float scale = p.alpha / static_cast<float>(p.size);
  par->run(p.N * chunks, [&](size_t task, size_t /*thread*/) {
    using DF = hn::ScalableTag<float>;
    const DF d;
    const size_t L = hn::Lanes(d);
    const size_t n = task / chunks;
    const size_t j0 = (task % chunks) * kChunk, j1 = std::min(p.HW, j0 + kChunk);
    const float* x = in + n * p.C * p.HW;
    float* y = out + n * p.C * p.HW;
    const auto vscale = hn::Set(d, scale), vbias = hn::Set(d, p.bias), vnbeta = hn::Set(d, -p.beta);
    for (size_t c = 0; c < p.C; ++c) {
      const size_t c_lo = c >= before ? c - before : 0;
      const size_t c_hi = std::min(p.C, c + after + 1);
      size_t j = j0;
      for (; j + L <= j1; j += L) {
        auto sum = hn::Zero(d);
        for (size_t k = c_lo; k < c_hi; ++k) {
          const auto v = hn::LoadU(d, x + k * p.HW + j);
          sum = hn::MulAdd(v, v, sum);
        }
        const auto base = hn::MulAdd(vscale, sum, vbias);
        const auto f = hn::Exp(d, hn::Mul(vnbeta, hn::Log(d, base)));
        hn::StoreU(hn::Mul(hn::LoadU(d, x + c * p.HW + j), f), d, y + c * p.HW + j);
      }
      // Fewer than a vector of columns left: a full load could run past the tensor.
      for (; j < j1; ++j) {
        float sum = 0.f;
        for (size_t k = c_lo; k < c_hi; ++k) sum += x[k * p.HW + j] * x[k * p.HW + j];
        y[c * p.HW + j] = x[c * p.HW + j] * std::pow(p.bias + scale * sum, -p.beta);
      }
    }
  });
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(lrn_impl);

void lrn(const LrnParams& p, const float* in, float* out, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(lrn_impl)(p, in, out, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
