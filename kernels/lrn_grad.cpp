// Backward of ONNX LRN (see lrn.h / lrn_grad.h). With s_c = bias + alpha/size * sum_{k in
// window(c)} x_k^2 and y_c = x_c * s_c^-beta:
//   dx_j = dy_j * s_j^-beta - 2*beta*alpha/size * x_j * sum_{c : j in window(c)} dy_c * x_c * s_c^(-beta-1)
// and j is in window(c) exactly when c is in [j - after, j + before].
// Vectorised over HW as the forward: one task per image and run of kChunk columns, walked in
// runs of kSub columns. Per run the channels are walked once; t_c = dy_c * x_c * s_c^(-beta-1)
// and s_c^-beta are kept in a ring of the last min(size, C) channels on the stack, and output j
// is finished as soon as t_{j+before} is known. A window too deep for the ring recomputes t per use (slow, exact same
// formula). Each output is summed in channel order, whatever the thread count.
#include <algorithm>
#include <cmath>

#include "kernels/lrn_grad.h"

#ifndef CONVOY_KERNELS_LRN_GRAD_SHARED
#define CONVOY_KERNELS_LRN_GRAD_SHARED
namespace convoy::kernels::lrn_grad_detail {
inline constexpr size_t kChunk = 512;  // columns per task (multiple of every vector length)
inline constexpr size_t kSub = 64;     // columns per ring row (a multiple of every vector length)
inline constexpr size_t kRing = 16;    // deepest channel window kept on the stack (2 x 4 KiB)
}  // namespace convoy::kernels::lrn_grad_detail
#endif  // CONVOY_KERNELS_LRN_GRAD_SHARED

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/lrn_grad.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
#include "kernels/elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace convoy::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void lrn_backward_impl(const LrnParams& p, const float* x_all, const float* dy_all, float* dx_all, const Parallel* par) {
  using lrn_grad_detail::kChunk;
  using lrn_grad_detail::kRing;
  using lrn_grad_detail::kSub;
  if (p.N == 0 || p.C == 0 || p.HW == 0) return;
  const size_t chunks = (p.HW + kChunk - 1) / kChunk;
  const size_t before = (p.size - 1) / 2;  // floor((size-1)/2)
  const size_t after = p.size / 2;         // ceil((size-1)/2)
  const size_t depth = std::min(p.size, p.C);
  const float scale = p.alpha / static_cast<float>(p.size);
  const float coef = 2.f * p.beta * scale;
  par->run(p.N * chunks, [&](size_t task, size_t /*thread*/) {
    using DF = hn::ScalableTag<float>;
    using VF = hn::Vec<DF>;
    const DF d;
    const size_t L = hn::Lanes(d);
    const size_t n = task / chunks;
    const size_t j0 = (task % chunks) * kChunk, j1 = std::min(p.HW, j0 + kChunk);
    const float* x = x_all + n * p.C * p.HW;
    const float* dy = dy_all + n * p.C * p.HW;
    float* dx = dx_all + n * p.C * p.HW;
    const VF vscale = hn::Set(d, scale), vbias = hn::Set(d, p.bias), vnbeta = hn::Set(d, -p.beta);
    const VF vcoef = hn::Set(d, coef);
    HWY_ALIGN float ring_t[kRing * kSub];
    HWY_ALIGN float ring_sp[kRing * kSub];
    // Lanes past the end of the tensor are loaded as 0 and never stored (LoadPart/StorePart).
    auto load = [&](const float* base, size_t c, size_t j, size_t nl) { return LoadPart(d, base + c * p.HW + j, nl); };
    // s_c^-beta and t_c = dy_c * x_c * s_c^(-beta-1) at columns [j, j + nl).
    auto compute = [&](size_t c, size_t j, size_t nl, VF& t, VF& sp) HWY_ATTR {
      const size_t lo = c >= before ? c - before : 0, hi = std::min(p.C, c + after + 1);
      VF sum = hn::Zero(d);
      for (size_t k = lo; k < hi; ++k) {
        const VF v = load(x, k, j, nl);
        sum = hn::MulAdd(v, v, sum);
      }
      const VF s = hn::MulAdd(vscale, sum, vbias);
      sp = hn::Exp(d, hn::Mul(vnbeta, hn::Log(d, s)));
      t = hn::Div(hn::Mul(hn::Mul(load(dy, c, j, nl), load(x, c, j, nl)), sp), s);
    };
    auto finish = [&](size_t c, size_t j, size_t nl, VF sp, VF tsum) HWY_ATTR {
      const VF r = hn::NegMulAdd(hn::Mul(vcoef, load(x, c, j, nl)), tsum, hn::Mul(load(dy, c, j, nl), sp));
      StorePart(d, r, dx + c * p.HW + j, nl);
    };
    // Runs of kSub columns: each channel row of x, dy and dx is read kSub floats at a time.
    for (size_t js = j0; js < j1; js += kSub) {
      const size_t jn = std::min(kSub, j1 - js);
      if (depth <= kRing) {
        // Channel k lives in ring row k % depth; rows are stepped with a wrap, not divided.
        auto out = [&](size_t c) HWY_ATTR {
          const size_t lo = c >= after ? c - after : 0, hi = std::min(p.C, c + before + 1);
          const float* sp_row = ring_sp + (c % depth) * kSub;
          for (size_t v = 0; v < jn; v += L) {
            VF tsum = hn::Zero(d);
            size_t slot = lo % depth;
            for (size_t k = lo; k < hi; ++k) {
              tsum = hn::Add(tsum, hn::Load(d, ring_t + slot * kSub + v));
              if (++slot == depth) slot = 0;
            }
            finish(c, js + v, std::min(L, jn - v), hn::Load(d, sp_row + v), tsum);
          }
        };
        size_t slot = 0;
        for (size_t c = 0; c < p.C; ++c) {
          for (size_t v = 0; v < jn; v += L) {
            VF t, sp;
            compute(c, js + v, std::min(L, jn - v), t, sp);
            hn::Store(t, d, ring_t + slot * kSub + v);
            hn::Store(sp, d, ring_sp + slot * kSub + v);
          }
          if (++slot == depth) slot = 0;
          if (c >= before) out(c - before);  // t_c completes the window of output c - before
        }
        for (size_t c = p.C > before ? p.C - before : 0; c < p.C; ++c) out(c);
      } else {
        for (size_t v = 0; v < jn; v += L) {
          const size_t j = js + v, nl = std::min(L, jn - v);
          for (size_t c = 0; c < p.C; ++c) {
            const size_t lo = c >= after ? c - after : 0, hi = std::min(p.C, c + before + 1);
            VF tsum = hn::Zero(d), t, sp, sp_c = hn::Zero(d);
            for (size_t k = lo; k < hi; ++k) {
              compute(k, j, nl, t, sp);
              tsum = hn::Add(tsum, t);
              if (k == c) sp_c = sp;
            }
            finish(c, j, nl, sp_c, tsum);
          }
        }
      }
    }
  });
}

}  // namespace convoy::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convoy::kernels {

HWY_EXPORT(lrn_backward_impl);

void lrn_backward(const LrnParams& p, const float* x, const float* dy, float* dx, const Parallel& par) {
  HWY_DYNAMIC_DISPATCH(lrn_backward_impl)(p, x, dy, dx, &par);
}

}  // namespace convoy::kernels
#endif  // HWY_ONCE
